"""pouch handover, accept and custody: the journey of Kim's reply."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

import pytest

from pouch import container
from pouch.custody import RECORD_HANDOVER

from .conftest import pouch


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """Kim, his envoy Kim Yong-chol, Trump and his receiver Pompeo, with a
    guard at the White House door who knows Kim's and Trump's cards."""
    names = {
        "kim": "Kim Jong-un",
        "chol": "Kim Yong-chol",
        "trump": "Donald J. Trump",
        "pompeo": "Mike Pompeo",
        "guard": "White House Guard",
    }
    for who, name in names.items():
        assert pouch("init", "--name", name, "--no-passphrase", "--home", tmp_path / who).code == 0
        pouch("card", "-o", tmp_path / f"{who}.card", "--home", tmp_path / who)

    def knows(who: str, *others: str) -> None:
        for other in others:
            r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified",
                      "--home", tmp_path / who)  # fmt: skip
            assert r.code == 0, r.err

    knows("kim", "chol", "trump")
    knows("chol", "kim", "pompeo")
    knows("trump", "kim", "pompeo")
    knows("pompeo", "chol", "trump", "kim")
    knows("guard", "kim", "trump")
    return {who: tmp_path / who for who in names}


def _sealed(world: dict[str, Path], tmp_path: Path, who: str, to: str, name: str) -> Path:
    """A short letter from who to the contact named to, sealed into name."""
    body = tmp_path / f"{name}.txt"
    body.write_text(f"Dear {to}, ...\n")
    out = tmp_path / name
    r = pouch("seal", "-t", to, "-o", out, body, "--home", world[who])
    assert r.code == 0, r.err
    return out


def test_the_journey_of_kims_reply(world: dict[str, Path], tmp_path: Path) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"])
    assert r.code == 0, r.err
    r = pouch("accredit", "Mike Pompeo", "--role", "receiver", "-o", tmp_path / "pompeo.cred",
              "--home", world["trump"])  # fmt: skip
    assert r.code == 0, r.err
    # The guard learns of Pompeo's credential (Trump gives it to him).
    assert pouch("credentials", "add", tmp_path / "pompeo.cred", "--home", world["guard"]).code == 0

    r = pouch("handover", reply, "--to", "Kim Yong-chol", "--at", "Pyongyang",
              "--home", world["kim"])  # fmt: skip
    assert r.code == 0, r.err
    # Not accepted yet: the guard sees a pending link.
    r = pouch("custody", reply, "--json", "--home", world["guard"])
    assert r.code == 0, r.err
    assert json.loads(r.out)["links"][0]["accepted"] is None
    said = pouch("custody", reply, "--home", world["guard"]).out.decode().splitlines()[-1]
    assert said.startswith("Custody verifies: 0 links signed by both parties, handover 1 "
                           "awaiting its taker's acceptance;")  # fmt: skip
    assert pouch("accept", reply, "--at", "Pyongyang", "--home", world["chol"]).code == 0
    r = pouch("handover", reply, "--to", "Mike Pompeo", "--at", "New York",
              "--home", world["chol"])  # fmt: skip
    assert r.code == 0, r.err
    assert pouch("accept", reply, "--at", "New York", "--home", world["pompeo"]).code == 0

    r = pouch("custody", reply, "--json", "--home", world["guard"])
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["verified"] and report["envelope_matches"]
    assert [(link["place"], link["accepted_at"]) for link in report["links"]] == [
        ("Pyongyang", "Pyongyang"),
        ("New York", "New York"),
    ]
    assert report["links"][0]["accredited"].startswith("envoy of")
    assert report["links"][1]["accredited"].startswith("receiver of")


def test_custody_problems_are_refused(world: dict[str, Path], tmp_path: Path) -> None:
    letter = _sealed(world, tmp_path, "trump", "Kim Jong-un", "letter.pouch")
    # A courier who was never accredited.
    assert pouch("contacts", "add", tmp_path / "chol.card", "--home", world["trump"]).code == 0
    r = pouch("handover", letter, "--to", "Kim Yong-chol", "--home", world["trump"])
    assert r.code == 0, r.err
    assert pouch("accept", letter, "--home", world["chol"]).code == 0
    r = pouch("custody", letter, "--home", world["guard"])
    assert r.code == 13 and "was not accredited" in r.out.decode()
    # With --json, stdout is one document: the report, which says it failed.
    r = pouch("custody", letter, "--json", "--home", world["guard"])
    assert r.code == 13 and json.loads(r.out)["verified"] is False
    # Someone who does not hold it cannot hand it on.
    r = pouch("handover", letter, "--to", "Kim Jong-un", "--home", world["pompeo"])
    assert r.code == 10 and "do not hold" in r.err
    # A swapped ciphertext is refused by whoever accepts next.
    r = pouch("handover", letter, "--to", "Mike Pompeo", "--home", world["chol"])
    assert r.code == 0, r.err
    data = bytearray(letter.read_bytes())
    data[container.HEADER.size + 100] ^= 1
    letter.write_bytes(bytes(data))
    r = pouch("accept", letter, "--home", world["pompeo"])
    assert r.code == 13 and "does not hash to the envelope id" in r.err


def test_a_forged_or_cut_trailer_is_noticed(world: dict[str, Path], tmp_path: Path) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    before = reply.read_bytes()
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    # The trailer is cut back to before Kim Yong-chol accepted: his register
    # still knows the head he accepted.
    reply.write_bytes(before)
    r = pouch("custody", reply, "--home", world["chol"])
    assert r.code == 13 and "cut back or replaced" in r.out.decode()
    # A torn last record (an append cut short by a crash) is named, and ignored.
    with reply.open("ab") as f:
        f.write(container.encode_record(container.Record(RECORD_HANDOVER, b"{}"))[:-3])
    r = pouch("custody", reply, "--home", world["guard"])
    assert r.code == 0 and "the last trailer record is torn" in r.out.decode()
    assert json.loads(pouch("custody", reply, "--json", "--home", world["guard"]).out)[
        "trailer_torn"
    ]
    # A handover whose signature does not verify.
    with container.load(reply) as c:
        body_of_handover = c.read_record(c.records[-1]).body
        forged = body_of_handover.replace(b'"sig":"', b'"sig":"A', 1)[:-1]
        c.append(container.Record(RECORD_HANDOVER, forged))
    r = pouch("custody", reply, "--home", world["guard"])
    assert r.code == 13 and "does not verify" in r.out.decode()


def test_open_reports_custody_and_can_require_it(world: dict[str, Path], tmp_path: Path) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # No custody at all: opened, unless custody is required.
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--home", world["trump"])
    assert r.code == 13 and "no custody" in r.err
    assert list(inbox.iterdir()) == []

    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    r = pouch("accredit", "Mike Pompeo", "--role", "receiver", "--home", world["trump"])
    assert r.code == 0, r.err
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    assert pouch("handover", reply, "--to", "Mike Pompeo", "--home", world["chol"]).code == 0
    assert pouch("accept", reply, "--home", world["pompeo"]).code == 0
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--json",
              "--home", world["trump"])  # fmt: skip
    assert r.code == 0, r.err
    custody = json.loads(r.out)["custody"]
    assert custody["verified"]
    # Trump never met Kim Yong-chol: his fingerprint, and Kim's credential for him.
    first, second = custody["links"]
    assert first["accredited"].startswith("envoy of") and second["to"] == "Mike Pompeo"


def test_an_unaccredited_courier_is_flagged_never_hidden(
    world: dict[str, Path], tmp_path: Path
) -> None:
    letter = _sealed(world, tmp_path, "trump", "Kim Jong-un", "letter.pouch")
    assert pouch("contacts", "add", tmp_path / "chol.card", "--home", world["trump"]).code == 0
    assert pouch("handover", letter, "--to", "Kim Yong-chol", "--home", world["trump"]).code == 0
    assert pouch("accept", letter, "--home", world["chol"]).code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # Kim knows Kim Yong-chol, but the chain ends with him, not with Kim.
    r = pouch("open", letter, "-o", inbox, "--require-accredited", "--home", world["kim"])
    assert r.code == 13 and "neither you nor a receiver" in r.err
    assert list(inbox.iterdir()) == []
    r = pouch("open", letter, "-o", inbox, "--home", world["kim"])
    assert r.code == 0, r.err
    assert "CUSTODY WARNING" in r.err and "neither you nor a receiver" in r.err
    assert (inbox / next(p.name for p in inbox.iterdir())).read_text() == "Dear Kim Jong-un, ...\n"


def test_a_guard_challenges_the_presenter(world: dict[str, Path], tmp_path: Path) -> None:
    """At the White House door: Kim Yong-chol answers with his key; someone
    holding only a copy of the pouch cannot."""
    import subprocess

    from .conftest import POUCH as POUCH_BIN

    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    assert pouch("accept", reply, "--home", world["chol"]).code == 0

    def at_the_door(presenter: str, aloud: bool = False) -> subprocess.CompletedProcess[str]:
        guard = subprocess.Popen(
            [POUCH_BIN, "custody", str(reply), "--challenge", "--home", str(world["guard"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert guard.stdout is not None and guard.stdin is not None and guard.stderr is not None
        line = ""
        while not line.startswith("challenge: "):
            line = guard.stdout.readline()
        challenge = [line.split()[1]]
        if aloud:  # the 25 digits the guard reads out, typed by the presenter
            while "read aloud:" not in line:
                line = guard.stderr.readline()
            challenge = line.split("read aloud:")[1].split()
            assert len(challenge) == 5
        answered = pouch("answer", reply, *challenge, "--home", world[presenter])
        out, err = guard.communicate(answered.out.decode() + "\n", timeout=60)
        return subprocess.CompletedProcess(guard.args, guard.returncode, out, err)

    ok = at_the_door("chol")
    assert ok.returncode == 0 and "holds the key of" in ok.stderr
    ok = at_the_door("chol", aloud=True)
    assert ok.returncode == 0 and "holds the key of" in ok.stderr
    impostor = at_the_door("pompeo")  # has a copy of the file, not the key
    assert impostor.returncode == 13 and "does not prove possession" in impostor.stderr


def test_a_receipt_goes_back_to_the_sender(world: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "reply.txt"
    body.write_text("Dear Mr. President, ...\n")
    reply = tmp_path / "reply.pouch"
    r = pouch("seal", "-t", "Donald J. Trump", "-o", reply, body, "--home", world["kim"])
    letter_id = r.err.split("letter    ")[1].split()[0]
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    assert pouch("handover", reply, "--to", tmp_path / "trump.card",
                 "--home", world["chol"]).code == 0  # fmt: skip
    assert pouch("accept", reply, "--home", world["trump"]).code == 0
    receipt = tmp_path / "receipt.pouch"
    r = pouch("open", reply, "--receipt", receipt, "--home", world["trump"])
    assert r.code == 0, r.err
    r = pouch("receipt", receipt, "--letter", letter_id, "--json", "--home", world["kim"])
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert (
        got["letter"] == letter_id and got["complete"] and got["signer_name"] == "Donald J. Trump"
    )
    assert got["custody_head"] is not None and got["custody"] == []
    # Bad input: a receipt for another letter; a receipt opened as a letter reads as one.
    r = pouch("receipt", receipt, "--letter", "0" * 64, "--home", world["kim"])
    assert r.code == 11 and "a receipt for another letter" in r.err
    r = pouch("receipt", reply, "--home", world["trump"])
    assert r.code == 2 and "not a receipt" in r.err


def _journey(world: dict[str, Path], tmp_path: Path, middle: str | None = None) -> Path:
    """Kim's reply, handed to Kim Yong-chol, optionally to a middle holder,
    then to Trump, every link accepted."""
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    hops = ["chol", *([middle] if middle else []), "trump"]
    giver = "kim"
    for taker in hops:
        r = pouch("handover", reply, "--to", tmp_path / f"{taker}.card", "--home", world[giver])
        assert r.code == 0, r.err
        assert pouch("accept", reply, "--home", world[taker]).code == 0
        giver = taker
    return reply


def test_a_scoped_envoy_needs_its_opening(world: dict[str, Path], tmp_path: Path) -> None:
    cred = tmp_path / "chol.credential"
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--for", "Donald J. Trump",
              "-o", cred, "--home", world["kim"])  # fmt: skip
    assert r.code == 0, r.err
    reply = _journey(world, tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # Without the opening, a scoped credential covers nobody.
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--home", world["trump"])
    assert r.code == 13 and "envoy under a scoped credential whose scope you were not" in r.err
    assert "pouch credentials add CREDENTIAL --scope FILE" in r.err  # what to do
    assert list(inbox.iterdir()) == []
    # An opening that is not this credential's is refused.
    other = tmp_path / "other.credential"
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--for", "Kim Yong-chol",
                 "-o", other, "--home", world["kim"]).code == 0  # fmt: skip
    r = pouch("credentials", "add", cred, "--scope", f"{other}.scope", "--home", world["trump"])
    assert r.code == 11 and "not this credential's" in r.err
    # With it (sent sealed, in real life), Kim Yong-chol is Kim's envoy to Trump.
    r = pouch("credentials", "add", cred, "--scope", f"{cred}.scope", "--home", world["trump"])
    assert r.code == 0, r.err
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--home", world["trump"])
    assert r.code == 0, r.err


def test_holders_accredited_by_someone_else_do_not_count(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """Pompeo is Trump's contact; Kim's reply passes through the guard, whom
    Pompeo (not Trump, not Kim) accredited as his receiver."""
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    assert pouch("contacts", "add", tmp_path / "guard.card", "--home", world["pompeo"]).code == 0
    cred = tmp_path / "guard.credential"
    r = pouch("accredit", "White House Guard", "--role", "receiver", "-o", cred,
              "--home", world["pompeo"])  # fmt: skip
    assert r.code == 0, r.err
    assert pouch("credentials", "add", cred, "--home", world["trump"]).code == 0
    reply = _journey(world, tmp_path, middle="guard")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--home", world["trump"])
    assert r.code == 13 and "handover 2: the taker is neither" in r.err


def test_a_revocation_received_by_letter_counts(world: dict[str, Path], tmp_path: Path) -> None:
    cred = tmp_path / "chol.credential"
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "-o", cred,
                 "--home", world["kim"]).code == 0  # fmt: skip
    credential_id = json.loads(pouch("credentials", "list", "--json", "--home", world["kim"]).out)[
        0
    ]["id"]
    reply = _journey(world, tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    r = pouch(
        "open", reply, "-o", inbox, "--require-accredited", "--json", "--home", world["trump"]
    )
    assert r.code == 0, r.err
    for f in inbox.iterdir():
        f.unlink()
    revocation = tmp_path / "chol.revocation"
    assert pouch("revoke", credential_id, "-o", revocation, "--home", world["kim"]).code == 0
    r = pouch("credentials", "add", revocation, "--home", world["trump"])
    assert r.code == 0 and "revocation" in r.out.decode()
    r = pouch("open", reply, "-o", inbox, "--require-accredited", "--home", world["trump"])
    assert r.code == 13 and "revoked" in r.err


def test_dates_out_of_range_are_usage_errors(world: dict[str, Path]) -> None:
    for args in (["--from", "9999-12-20"], ["--from", "0001-01-01"],
                 ["--from", "8999-12-30", "--until", "9999-12-31T23:59:59Z"]):  # fmt: skip
        r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", *args, "--home", world["kim"])
        assert r.code == 2 and "not a date pouch takes" in r.err, (args, r.err)


def test_a_receiver_who_does_not_open_signs_a_custody_receipt(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """Pompeo takes Kim's reply for Trump at the White House without opening
    it: his countersigned handover is Kim Yong-chol's proof of delivery."""
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    cred = tmp_path / "pompeo.credential"
    r = pouch("accredit", "Mike Pompeo", "--role", "receiver", "-o", cred,
              "--home", world["trump"])  # fmt: skip
    assert r.code == 0, r.err
    # The White House shows Kim Yong-chol Pompeo's credential; his handover carries it.
    assert pouch("credentials", "add", cred, "--home", world["chol"]).code == 0
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    envoys_receipt = tmp_path / "envoy.receipt"
    r = pouch("accept", reply, "--receipt", envoys_receipt, "--home", world["chol"])
    assert r.code == 0, r.err
    assert pouch("handover", reply, "--to", "Mike Pompeo", "--home", world["chol"]).code == 0
    delivery = tmp_path / "delivery.receipt"
    r = pouch("accept", reply, "--at", "the White House", "--receipt", delivery,
              "--home", world["pompeo"])  # fmt: skip
    assert r.code == 0, r.err
    envelope = json.loads(pouch("custody", reply, "--json", "--home", world["guard"]).out)[
        "envelope"
    ]

    # Anyone can check it without keys: the guard, say.
    r = pouch("custody", delivery, "--json", "--home", world["guard"])
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["custody_receipt"] and report["verified"] and report["envelope"] == envelope
    assert [link["accepted_at"] for link in report["links"]] == [None, "the White House"]

    # Kim, the sender: delivered to Trump, by his receiver, via Kim Yong-chol.
    r = pouch("receipt", delivery, "--envelope", envelope, "--json", "--home", world["kim"])
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["delivered_to_name"] == "Donald J. Trump" and got["verified"]
    assert got["accepted_at"] == "the White House" and got["links"] == 2
    r = pouch("receipt", delivery, "--home", world["kim"])
    assert r.code == 0 and "by their receiver Mike Pompeo" in r.out.decode()

    # An envoy's acceptance is custody, not delivery.
    r = pouch("receipt", envoys_receipt, "--home", world["kim"])
    assert r.code == 13 and "your own envoy: the pouch is in transit" in r.out.decode()
    # A receipt cut back before the last acceptance proves no delivery.
    with container.load(delivery) as c:
        records = [c.read_record(ref) for ref in c.records]
    cut = tmp_path / "cut.receipt"
    cut.write_bytes(container.custody_receipt(envelope, records[:-1]))
    r = pouch("receipt", cut, "--home", world["kim"])
    assert r.code == 13 and "never accepted: not delivered" in r.out.decode()
    # A receipt for another pouch; the wrong kind of id; a receipt is not a letter.
    r = pouch("receipt", delivery, "--envelope", "0" * 64, "--home", world["kim"])
    assert r.code == 13 and "a custody receipt for another pouch" in r.err
    r = pouch("receipt", delivery, "--letter", "0" * 64, "--home", world["kim"])
    assert r.code == 2 and "--envelope" in r.err
    r = pouch("open", delivery, "--home", world["trump"])
    assert r.code != 0 and "does not hold its letter" in r.err
    r = pouch("handover", delivery, "--to", "Kim Jong-un", "--home", world["pompeo"])
    assert r.code != 0 and "custody receipt" in r.err


@pytest.mark.parametrize(
    ("start", "until", "message"),
    [
        ("2018-05-29", "2018-06-28", "after its credential expired (2018-06-28T00:00:00Z)"),
        ("2030-01-01", "2030-01-20", "before its credential began (2030-01-01T00:00:00Z)"),
    ],
)
def test_a_holder_out_of_its_credentials_time_is_named(
    world: dict[str, Path], tmp_path: Path, start: str, until: str, message: str
) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    cred = tmp_path / "chol.credential"
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--from", start, "--until", until,
              "-o", cred, "--home", world["kim"])  # fmt: skip
    assert r.code == 0, r.err
    assert pouch("credentials", "add", cred, "--home", world["guard"]).code == 0
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    r = pouch("custody", reply, "--home", world["guard"])
    assert r.code == 13 and message in r.out.decode(), r.out


def test_a_self_issued_credential_in_a_trailer_is_refused(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """Kim Yong-chol slips a credential he signed for himself into the trailer."""
    from pouch import statements
    from pouch.custody import RECORD_CREDENTIAL
    from pouch.home import Home

    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    cred = tmp_path / "chol.credential"
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "-o", cred,
                 "--home", world["kim"]).code == 0  # fmt: skip
    chol = Home(world["chol"]).unlock(lambda: b"")
    envelope = statements.decode(cred.read_bytes().strip())
    p = json.loads(envelope.payload)
    p["principal"] = p["agent"]
    forged = statements.sign("credential", p, [(chol.fingerprint, chol.signing)])
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    with container.load(reply) as c:
        c.append(container.Record(RECORD_CREDENTIAL, forged.encode()))
    assert pouch("accept", reply, "--home", world["chol"]).code == 13  # the chain is broken now
    r = pouch("custody", reply, "--home", world["guard"])
    assert r.code == 13 and "self-issued" in r.out.decode(), r.out


def test_a_custody_receipt_proves_nothing_when_a_holder_was_not_accredited(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """An unaccredited stranger (the guard) carried it between Kim and
    Pompeo; and a revoked envoy's acceptance is no delivery either."""
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    cred = tmp_path / "pompeo.credential"
    assert pouch("accredit", "Mike Pompeo", "--role", "receiver", "-o", cred,
                 "--home", world["trump"]).code == 0  # fmt: skip
    assert pouch("credentials", "add", cred, "--home", world["kim"]).code == 0
    for giver, taker in (("kim", "guard"), ("guard", "pompeo")):
        r = pouch("handover", reply, "--to", tmp_path / f"{taker}.card", "--home", world[giver])
        assert r.code == 0, r.err
        args = ["--receipt", tmp_path / "delivery.receipt"] if taker == "pompeo" else []
        assert pouch("accept", reply, *args, "--home", world[taker]).code == 0
    r = pouch("receipt", tmp_path / "delivery.receipt", "--home", world["kim"])
    assert r.code == 13 and "was not accredited" in r.out.decode(), r.out

    letter = _sealed(world, tmp_path, "kim", "Donald J. Trump", "second.pouch")
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    assert pouch("handover", letter, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    held = tmp_path / "held.receipt"
    assert pouch("accept", letter, "--receipt", held, "--home", world["chol"]).code == 0
    listed = json.loads(pouch("credentials", "list", "--json", "--home", world["kim"]).out)
    envoy = next(c["id"] for c in listed if c["role"] == "envoy")
    assert pouch("revoke", envoy, "--home", world["kim"]).code == 0
    r = pouch("receipt", held, "--home", world["kim"])
    assert r.code == 13 and "your own envoy" in r.out.decode(), r.out


def test_accept_checks_where_the_custody_receipt_goes_first(
    world: dict[str, Path], tmp_path: Path
) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("handover", reply, "--to", "Donald J. Trump", "--home", world["kim"]).code == 0
    before = reply.read_bytes()
    for out, code, message in (
        (reply, 10, "already exists"),  # the pouch itself
        (tmp_path / "reply.pouch.txt", 10, "already exists"),  # the letter's body
        (tmp_path / "nowhere" / "x.receipt", 9, "cannot write the custody receipt"),
        ("-", 2, "goes into a file"),
    ):
        r = pouch("accept", reply, "--receipt", out, "--home", world["trump"])
        assert r.code == code and message in r.err, (out, r.err)
        assert reply.read_bytes() == before  # nothing accepted
    r = pouch("accept", reply, "--receipt", tmp_path / "ok.receipt", "--home", world["trump"])
    assert r.code == 0, r.err
    report = json.loads(pouch("custody", tmp_path / "ok.receipt", "--json",
                              "--home", world["guard"]).out)  # fmt: skip
    assert report["custody_receipt"] and report["envelope_matches"] is None
    r = pouch("receipt", tmp_path / "ok.receipt", "--envelope", "c1e5", "--home", world["kim"])
    assert r.code == 2 and "full envelope id" in r.err


def _without_overriding_file_modes() -> None:
    """Run as root, but bound by file modes as anyone else: the next program
    starts without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_pouch_one_may_read_but_not_write_is_checked_first(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """handover and accept check the chain with the file open for reading;
    write access is asked for only to append, of the very file checked."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to drop the capabilities that override file modes")
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    os.chown(reply, 65534, 65534)  # another user's, 0644: readable, not writable
    reply.chmod(0o644)
    bound = {"preexec": _without_overriding_file_modes}
    r = pouch("accept", reply, "--home", world["trump"], **bound)
    assert r.code == 10 and "nobody handed this pouch over" in r.err, r.err
    r = pouch("handover", reply, "--to", "Donald J. Trump", "--home", world["kim"])
    assert r.code == 0, r.err
    r = pouch("accept", reply, "--home", world["trump"], **bound)
    assert r.code == 9 and f"cannot open {reply}: Permission denied" in r.err, r.err


def test_a_handover_goes_into_the_file_that_was_checked(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """Appending reopens the checked file through its open handle: a pouch
    put in its place meanwhile is not the one appended to."""
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    other = _sealed(world, tmp_path, "kim", "Donald J. Trump", "other.pouch")
    kept = other.read_bytes()
    with container.load(reply) as c:
        os.replace(other, reply)
        c.append(container.Record(7, b"a statement"))
        assert [r.type for r in c.records] == [7]
    assert reply.read_bytes() == kept  # the file now at the path is untouched


def test_handing_over_a_custody_receipt_one_does_not_hold(
    world: dict[str, Path], tmp_path: Path
) -> None:
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("handover", reply, "--to", "Donald J. Trump", "--home", world["kim"]).code == 0
    receipt = tmp_path / "delivery.receipt"
    r = pouch("accept", reply, "--receipt", receipt, "--home", world["trump"])
    assert r.code == 0, r.err
    r = pouch("handover", receipt, "--to", "Donald J. Trump", "--home", world["kim"])
    assert r.code == 10 and "you do not hold this pouch" in r.err, r.err


def test_accept_says_what_does_not_hold(world: dict[str, Path], tmp_path: Path) -> None:
    """Trump hands a letter to Kim Yong-chol, who does not know him: Kim
    Yong-chol holds it now, and accepting countersigns it, but he is told
    the chain does not verify as far as his register knows, and what to do."""
    letter = _sealed(world, tmp_path, "trump", "Mike Pompeo", "l.pouch")
    r = pouch("handover", letter, "--to", tmp_path / "chol.card", "--home", world["trump"])
    assert r.code == 0, r.err
    r = pouch("accept", letter, "--home", world["chol"])
    assert r.code == 0, r.err
    assert "warning: you hold it now, but its custody does not verify" in r.err
    assert "neither a principal you know" in r.err
    assert f"'pouch custody {letter}' shows the chain" in r.err
    # Once he knows Trump's card, the same journey is accepted without a word.
    r = pouch("contacts", "add", tmp_path / "trump.card", "--verified", "--home", world["chol"])
    assert r.code == 0, r.err
    again = _sealed(world, tmp_path, "trump", "Mike Pompeo", "again.pouch")
    r = pouch("handover", again, "--to", tmp_path / "chol.card", "--home", world["trump"])
    assert r.code == 0, r.err
    r = pouch("accept", again, "--home", world["chol"])
    assert r.code == 0 and "warning" not in r.err, r.err


def test_a_guard_with_cards_and_no_identity(world: dict[str, Path], tmp_path: Path) -> None:
    """A guard at a door is given Kim's and Trump's cards, and nothing else:
    no identity, no register. The envoy's credential travels in the pouch."""
    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--home", world["kim"]).code == 0
    r = pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"])
    assert r.code == 0, r.err
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    door = tmp_path / "no-home"
    cards = ["--card", tmp_path / "kim.card", "--card", tmp_path / "trump.card"]
    r = pouch("custody", reply, *cards, "--home", door)
    assert r.code == 0, r.out.decode() + r.err
    assert b"Kim Jong-un -> Kim Yong-chol" in r.out
    assert b"Custody verifies: 1 link signed by both parties; every holder" in r.out
    assert b"revocations not checked: no register" in r.out
    assert not door.exists()
    # Without Kim's card, the first giver is nobody the guard knows.
    r = pouch("custody", reply, "--card", tmp_path / "trump.card", "--home", door)
    assert r.code == 13 and b"neither a principal you know" in r.out
    # Without any card, an empty home says what to do, as before.
    r = pouch("custody", reply, "--home", door)
    assert r.code == 9 and "no pouch identity" in r.err and "--card FILE" in r.err


def test_at_a_terminal_the_answer_is_also_a_qr_code(world: dict[str, Path], tmp_path: Path) -> None:
    from .terminal import Terminal

    reply = _sealed(world, tmp_path, "kim", "Donald J. Trump", "reply.pouch")
    assert pouch("handover", reply, "--to", "Kim Yong-chol", "--home", world["kim"]).code == 0
    assert pouch("accept", reply, "--home", world["chol"]).code == 0
    t = Terminal("answer", reply, "10821 93716 00213 55821 91102", "--home", world["chol"])
    assert t.wait() == 0, t.text
    assert "pouch-answer-" in t.text and "▀" in t.text
    piped = pouch("answer", reply, "10821", "93716", "00213", "55821", "91102",
                  "--home", world["chol"])  # fmt: skip
    assert piped.code == 0 and piped.out.startswith(b"pouch-answer-") and "▀" not in piped.err
