"""Credentials and revocations: accreditation as signed statements."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pouch import statements
from pouch.custody import (
    Credential,
    Revocation,
    Scope,
    accredit,
    revoke,
    statement_id,
)
from pouch.errors import StatementError

from .vectors.generate import stream_rand, vector_identity

KIM = vector_identity("Kim Jong-un")
CHOL = vector_identity("Kim Yong-chol")
TRUMP = vector_identity("Donald J. Trump")
POMPEO = vector_identity("Mike Pompeo")
START = datetime(2018, 5, 29, 0, 0, tzinfo=UTC)


def envoy(**kw: object) -> tuple[Credential, Scope | None]:
    args: dict[str, object] = {
        "principal": KIM,
        "agent": CHOL.card(),
        "role": "envoy",
        "valid_from": START,
        "until": START + timedelta(days=30),
        "rand": stream_rand("credential"),
    }
    args.update(kw)
    return accredit(**args)  # type: ignore[arg-type]


def test_a_credential_round_trips_and_names_its_parties() -> None:
    cred, opening = envoy()
    assert opening is None and cred.scope is None
    again = Credential.from_bytes(cred.encode())
    assert again == cred
    assert (again.principal, again.agent, again.agent_name) == (
        KIM.signing_key,
        CHOL.signing_key,
        "Kim Yong-chol",
    )
    assert again.id == statement_id(again.envelope) and len(again.id) == 64
    assert again.covers("2018-05-31T10:00:00Z")
    assert not again.covers("2018-05-28T23:59:59Z")
    assert not again.covers("2018-06-28T00:00:01Z")


def test_the_id_is_over_pae_not_json() -> None:
    cred, _ = envoy()
    env = cred.envelope
    relabelled = statements.Envelope(
        env.payload_type, env.payload, (("other", env.signatures[0][1]),)
    )
    assert Credential.from_bytes(relabelled.encode()).id == cred.id


def test_only_the_principal_signs_and_never_for_itself() -> None:
    cred, _ = envoy()
    p = json.loads(cred.envelope.payload)
    forged = statements.sign("credential", p, [("x", CHOL.signing)])
    with pytest.raises(StatementError, match="required signature"):
        Credential.from_bytes(forged.encode())
    both = statements.sign("credential", p, [("k", KIM.signing), ("c", CHOL.signing)])
    with pytest.raises(StatementError, match="does not name"):
        Credential.from_bytes(both.encode())
    with pytest.raises(StatementError, match="self-issued"):
        envoy(agent=KIM.card())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "king", "envoy or receiver"),
        ("until", "2018-05-28T00:00:00Z", "ends before it starts"),
        ("from", "29 May 2018", "bad start time"),
        ("scope", "xyz", "bad scope"),
        ("agent_name", "Kim\u202eYong", "bad agent name"),
    ],
)
def test_malformed_credentials_are_refused(field: str, value: str, message: str) -> None:
    cred, _ = envoy()
    p = json.loads(cred.envelope.payload)
    p[field] = value
    bad = statements.sign("credential", p, [("k", KIM.signing)])
    with pytest.raises(StatementError, match=message):
        Credential.from_bytes(bad.encode())


def test_a_scope_is_committed_to_and_opened_in_private() -> None:
    cred, opening = envoy(scope=[TRUMP.fingerprint])
    assert opening is not None and cred.scope == opening.commitment()
    assert TRUMP.fingerprint not in cred.encode().decode()  # a carrier learns no recipient
    assert Scope.from_bytes(opening.encode()) == opening
    assert cred.allows(opening, TRUMP.fingerprint)
    assert not cred.allows(opening, POMPEO.fingerprint)
    assert not cred.allows(None, TRUMP.fingerprint)
    other = Scope(bytes(16), opening.fingerprints)  # the right names, a guessed salt
    assert not cred.allows(other, TRUMP.fingerprint)
    unscoped, _ = envoy()
    assert unscoped.allows(None, POMPEO.fingerprint)


def test_a_revocation_counts_only_from_the_issuer() -> None:
    cred, _ = envoy()
    r = revoke(KIM, cred.id, START + timedelta(days=3))
    assert Revocation.from_bytes(r.encode()).revokes(cred)
    by_someone_else = revoke(TRUMP, cred.id, START + timedelta(days=3))
    assert not by_someone_else.revokes(cred)
    other, _ = envoy(role="receiver")
    assert not r.revokes(other)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_statements_fail_cleanly(data: st.DataObject) -> None:
    cred, opening = envoy(scope=[TRUMP.fingerprint])
    assert opening is not None
    for parse, good in (
        (Credential.from_bytes, cred.encode()),
        (Revocation.from_bytes, revoke(KIM, cred.id, START).encode()),
        (Scope.from_bytes, opening.encode()),
    ):
        raw = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        try:
            parse(bytes(raw))
        except StatementError:
            pass
