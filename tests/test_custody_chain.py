"""The custody chain: handovers, acceptances, and every way to break one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pouch import _canonical, statements
from pouch.custody import Acceptance, Handover, accept, build_chain, hand_over
from pouch.errors import StatementError

from .vectors.generate import vector_identity

KIM = vector_identity("Kim Jong-un")
CHOL = vector_identity("Kim Yong-chol")
POMPEO = vector_identity("Mike Pompeo")
TRUMP = vector_identity("Donald J. Trump")
ENVELOPE = "e" * 64
T0 = datetime(2018, 5, 30, 8, 0, tzinfo=UTC)


def journey() -> list[Handover | Acceptance]:
    """Kim hands his reply to Kim Yong-chol in Pyongyang; he carries it to
    New York, hands it to Pompeo, who takes it to the White House."""
    h1 = hand_over(KIM, ENVELOPE, CHOL.signing_key, T0, place="Pyongyang")
    a1 = accept(CHOL, h1, T0 + timedelta(minutes=5), place="Pyongyang")
    h2 = hand_over(CHOL, ENVELOPE, POMPEO.signing_key, T0 + timedelta(days=1), a1, seq=2,
                   place="New York", note="dinner at the residence")  # fmt: skip
    a2 = accept(POMPEO, h2, T0 + timedelta(days=1, minutes=1))
    return [h1, a1, h2, a2]


def test_a_whole_journey_is_one_chain() -> None:
    records = journey()
    chain = build_chain(ENVELOPE, records)
    assert chain.problems == [] and chain.forks == []
    assert [(link.giver, link.taker) for link in chain.links] == [
        (KIM.fingerprint, CHOL.fingerprint),
        (CHOL.fingerprint, POMPEO.fingerprint),
    ]
    assert chain.holder == POMPEO.signing_key
    assert chain.head == records[-1].hash
    parsed = [type(r).from_bytes(r.statement.encode()) for r in records]
    assert parsed == records
    assert records[2].place == "New York" and records[2].note == "dinner at the residence"


def test_a_pending_handover_is_not_yet_held() -> None:
    chain = build_chain(ENVELOPE, journey()[:3])
    assert chain.problems == []
    assert chain.holder == CHOL.signing_key  # Pompeo has not accepted yet


def _problems(records: list[Handover | Acceptance]) -> list[str]:
    return build_chain(ENVELOPE, records).problems


def test_broken_chains_are_named() -> None:
    h1, a1, h2, a2 = journey()
    assert "countersignature is missing" in _problems([h1, h2, a2])[0]
    assert "duplicate" in _problems([h1, a1, a1, h2, a2])[0]
    assert _problems([h1, h2, a1, a2])  # reordered
    assert "countersigns no handover" in _problems([a1, h1])[0]
    other = hand_over(KIM, "f" * 64, CHOL.signing_key, T0)
    assert "another envelope" in _problems([other])[0]
    late = hand_over(KIM, ENVELOPE, CHOL.signing_key, T0 + timedelta(days=2))
    early = accept(CHOL, late, T0)
    assert "goes backwards" in _problems([late, early])[0]
    # Kim Yong-chol hands it over twice after the same link: a fork.
    h2b = hand_over(CHOL, ENVELOPE, TRUMP.signing_key, T0 + timedelta(days=1), a1, seq=2)
    chain = build_chain(ENVELOPE, [h1, a1, h2, a2, h2b])
    assert chain.forks == [(2, a1.hash)] and "custody fork" in chain.problems[0]
    # Someone who never held it hands it on.
    h2c = hand_over(POMPEO, ENVELOPE, TRUMP.signing_key, T0 + timedelta(days=1), a1, seq=2)
    assert "giver is not the one who took" in _problems([h1, a1, h2c])[0]
    # A second start.
    assert "does not start at handover 1" in _problems([h2])[0]


def test_signatures_are_the_parties_own() -> None:
    h1, a1, _, _ = journey()
    payload = _canonical.loads(h1.statement.payload)
    forged = statements.sign("handover", payload, [("x", CHOL.signing)])
    with pytest.raises(StatementError, match="required signature"):
        Handover.from_bytes(forged.encode())
    payload = _canonical.loads(a1.statement.payload)
    by_other = statements.sign("acceptance", payload, [("x", POMPEO.signing)])
    with pytest.raises(StatementError, match="required signature"):
        Acceptance.from_bytes(by_other.encode())
    with pytest.raises(StatementError, match="only its taker"):
        accept(POMPEO, h1, T0)
    extra = statements.sign("handover", _canonical.loads(h1.statement.payload),
                            [("k", KIM.signing), ("p", POMPEO.signing)])  # fmt: skip
    with pytest.raises(StatementError, match="does not name"):
        Handover.from_bytes(extra.encode())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_custody_statements_fail_cleanly(data: st.DataObject) -> None:
    h1, a1, _, _ = journey()
    for parse, good in ((Handover.from_bytes, h1.statement.encode()),
                        (Acceptance.from_bytes, a1.statement.encode())):  # fmt: skip
        raw = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        try:
            parse(bytes(raw))
        except StatementError:
            pass


def test_a_receipt_body_is_checked_field_by_field() -> None:
    from pouch.errors import LetterError
    from pouch.letter.receipts import Receipt

    good = Receipt("a" * 64, "b" * 64, "c" * 64, 1, "d" * 64, "d" * 64, None, None,
                   "2018-06-01T12:00:00Z", True, (), 1)  # fmt: skip
    assert Receipt.decode(good.encode()) == good
    for change in (b'"time":"yesterday-ish"', b'"seq":true', b'"letter":"xyz"'):
        key = change.split(b":")[0]
        data = good.encode()
        start = data.index(key)
        end = data.index(b",", start)
        with pytest.raises(LetterError):
            Receipt.decode(data[:start] + change + data[end:])


def test_a_challenge_read_aloud() -> None:
    """The guard reads 25 digits aloud; the holder's answer to them checks
    against the written challenge too. A misheard digit, or another
    holder, does not answer."""
    from pouch.custody import answer, challenge_of, check_answer, new_spoken_challenge

    from .conftest import det_rand

    chain = build_chain(ENVELOPE, journey())
    spoken, written = new_spoken_challenge(det_rand(b"door"))
    groups = spoken.split()
    assert len(groups) == 5 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert challenge_of(spoken) == challenge_of("-".join(groups)) == written
    reply = answer(POMPEO, "".join(groups), chain)
    assert check_answer(written, reply, chain) and check_answer(spoken, reply, chain)
    misheard = spoken[:-1] + str((int(spoken[-1]) + 1) % 10)
    assert not check_answer(misheard, reply, chain)
    with pytest.raises(StatementError):
        answer(CHOL, spoken, chain)  # not the holder
    # SPEC.md 3.10's example.
    assert challenge_of("10821 93716 00213 55821 91102") == (
        "pouch-challenge-09d73c71ea4b9c9e028bdfe62a5db89eb0b9932565c75201031aeb2240b85428"
    )
    for bad in ("1234", "9" * 25, "pouch-challenge-zz"):
        with pytest.raises(StatementError):
            challenge_of(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -abcdef\u0663", max_size=40))
def test_any_text_is_a_challenge_or_refused(text: str) -> None:
    from pouch.custody import challenge_of

    try:
        written = challenge_of(text)
    except StatementError:
        return
    assert written.startswith("pouch-challenge-") and len(written) == 16 + 64
