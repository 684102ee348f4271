"""Identities, cards, contacts and safety numbers: library and CLI."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from pouch import _canonical, statements
from pouch.errors import FileError, StatementError
from pouch.home import Home, Register
from pouch.home._store import SCHEMA_VERSION
from pouch.identity import Card, Identity, safety_number

from .conftest import POUCH, pouch, run
from .vectors.generate import vector_identity


def _identity(name: str) -> Identity:
    return vector_identity(name)


def test_card_is_a_self_signed_statement() -> None:
    kim = _identity("Kim Jong-un")
    card = kim.card()
    again = Card.from_bytes(card.encode())
    assert again.fingerprint == kim.fingerprint and len(kim.fingerprint) == 64
    assert again.name == "Kim Jong-un" and again.created == "2018-05-24T09:00:00Z"
    assert str(again.pq).startswith("age1pq1") and str(again.x25519).startswith("age1")
    doc = json.loads(card.encode())
    assert doc["payloadType"] == "application/vnd.pouch.card+json"
    payload = json.loads(base64.b64decode(doc["payload"]))
    assert payload["v"] == 1 and payload["signing_key"]["alg"] == "ed25519"
    # Ed25519 is deterministic: fixed keys and time give the same card bytes
    assert _identity("Kim Jong-un").card().encode() == card.encode()


def test_a_card_signed_by_another_key_is_refused() -> None:
    kim, eve = _identity("Kim Jong-un"), _identity("Eve")
    payload = json.loads(base64.b64decode(json.loads(kim.card().encode())["payload"]))
    forged = statements.sign("card", payload, [("x", eve.signing)])
    with pytest.raises(StatementError, match="missing or invalid"):
        Card.from_bytes(forged.encode())
    payload["name"] = "Kim Yong-chol"
    renamed = statements.sign("card", payload, [("x", eve.signing)])
    with pytest.raises(StatementError):
        Card.from_bytes(renamed.encode())


def test_safety_numbers_are_symmetric() -> None:
    a, b = _identity("A").signing_key, _identity("B").signing_key
    assert safety_number(a, b) == safety_number(b, a)
    assert safety_number(a, b) != safety_number(a)
    assert len(safety_number(a, b)) == 12
    assert all(len(g) == 5 and g.isdigit() for g in safety_number(a, b))


def test_the_key_file_is_passphrase_protected_at_log_n_18(tmp_path: Path) -> None:
    home = Home(tmp_path / "kim")
    home.create(_identity("Kim Jong-un"), b"Pyongyang")
    assert home.key_path.stat().st_mode & 0o777 == 0o600
    assert home.path.stat().st_mode & 0o777 == 0o700
    lines = home.key_path.read_bytes().split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    kind, _salt, log_n = lines[1].split(b" ")[1:]
    assert kind == b"scrypt" and int(log_n) >= 18
    unlocked = home.unlock(lambda: b"Pyongyang")
    assert unlocked.fingerprint == home.card().fingerprint
    assert (home.register_path.stat().st_mode & 0o777) == 0o600


def test_the_register_migrates_forward_and_refuses_the_future(tmp_path: Path) -> None:
    path = tmp_path / "register.db"
    with Register(path) as reg:
        assert reg.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    future = f"schema version {SCHEMA_VERSION + 1}; this pouch knows {SCHEMA_VERSION}"
    with pytest.raises(FileError, match=future) as e:
        Register(path)
    assert e.value.hints == ("upgrade pouch",)


def test_a_schema_2_register_migrates_and_keeps_its_contacts(tmp_path: Path) -> None:
    """A register written by an earlier pouch (schema 2), built with the
    migrations of the time, keeps its contacts and stream. Its counters
    start again: letters sealed before the ledger (schema 5) had no order
    blocks, and this pouch cannot open them."""
    from pouch.home import _store as register

    path = tmp_path / "register.db"
    db = sqlite3.connect(path)
    for step in register.MIGRATIONS[:2]:
        db.executescript(step)
    card = _identity("Kim Jong-un").card()
    db.execute(
        "INSERT INTO contacts VALUES (?, ?, ?, '2018-05-24T09:00:00Z', NULL, NULL)",
        (card.fingerprint, card.name, card.encode()),
    )
    db.execute("INSERT INTO counters VALUES (?, 4)", (card.fingerprint,))
    db.execute("INSERT INTO meta VALUES ('stream', 'abc')")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Register(path) as reg:
        assert reg.schema_version == SCHEMA_VERSION == 5
        assert [c.name for c in reg.contacts()] == ["Kim Jong-un"]
        assert reg.reserve("abc", card.fingerprint) == 1
        assert reg.stream_id(lambda: "new") == "abc"
        assert reg.credentials() == []


# --- the CLI -----------------------------------------------------------------


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for who, name in (("kim", "Kim Jong-un"), ("trump", "Donald J. Trump")):
        home = tmp_path / who
        r = pouch("init", "--name", name, "--no-passphrase", "--home", home)
        assert r.code == 0, r.err
        assert "warning: the secret keys" in r.err
        out[who] = home
        card = tmp_path / f"{who}.card"
        assert pouch("card", "-o", card, "--home", home).code == 0
    return out


def test_init_with_a_passphrase_from_env_and_file(tmp_path: Path) -> None:
    r = pouch(
        "init",
        "--name",
        "Kim Jong-un",
        "--home",
        tmp_path / "a",
        env={"POUCH_PASSPHRASE": "passphrase from env"},
    )
    assert r.code == 0, r.err
    assert b"fingerprint" in r.out and "warning" not in r.err
    secret = tmp_path / "pass"
    secret.write_text("passphrase from file\n")
    # A passphrase file follows the key file's rule: others must not read it.
    r = pouch("init", "--name", "Kim", "--home", tmp_path / "b", "--passphrase-file", secret)
    assert r.code == 10 and f"{secret} holds a passphrase but others can read it" in r.err
    assert f"chmod 600 {secret}" in r.err and not (tmp_path / "b").exists()
    secret.chmod(0o600)
    r = pouch("init", "--name", "Kim", "--home", tmp_path / "b", "--passphrase-file", secret)
    assert r.code == 0, r.err
    r = pouch("key", "export", "--age", "--home", tmp_path / "b", "--passphrase-file", secret)
    assert r.code == 0 and b"\nAGE-SECRET-KEY-PQ-1" in r.out
    r = pouch("key", "export", "--age", "--home", tmp_path / "b", env={"POUCH_PASSPHRASE": "wrong"})
    assert (r.code, r.err) == (4, "error: incorrect passphrase\n")
    r = pouch("init", "--name", "Kim", "--home", tmp_path / "b", "--no-passphrase")
    assert r.code == 10 and "already holds an identity" in r.err


def test_home_from_the_environment(tmp_path: Path) -> None:
    r = pouch("init", "--name", "Env", "--no-passphrase", env={"POUCH_HOME": str(tmp_path / "e")})
    assert r.code == 0 and (tmp_path / "e" / "card.json").exists()


def test_contacts_and_fingerprints(homes: dict[str, Path], tmp_path: Path) -> None:
    kim, trump = homes["kim"], homes["trump"]
    r = pouch("contacts", "add", tmp_path / "trump.card", "--home", kim)
    assert r.code == 0 and b"(NOT verified)" in r.out and "contacts verify" in r.err
    r = pouch("contacts", "add", tmp_path / "kim.card", "--verified", "--home", trump)
    assert b"(verified)" in r.out
    listing = json.loads(pouch("contacts", "list", "--json", "--home", trump).out)
    assert [c["name"] for c in listing] == ["Kim Jong-un"]
    assert listing[0]["verified_how"] == "in person, at import" and listing[0]["post_quantum"]

    # the same safety number on both sides
    a = pouch("fingerprint", "Donald J. Trump", "--home", kim, "--no-qr").out.splitlines()[1:]
    b = pouch("fingerprint", "kim jong-un", "--home", trump, "--no-qr").out.splitlines()[1:]
    assert a == b and len(b" ".join(a).split()) == 12
    qr = pouch("fingerprint", "--home", kim).out.decode()
    assert "█" in qr or "▀" in qr

    # by fingerprint prefix (8 or more hex digits), and verification
    fp = listing[0]["fingerprint"]
    r = pouch("contacts", "verify", "Donald J. Trump", "--yes", "--home", kim)
    assert r.code == 0 and b"is verified" in r.out
    r = pouch("fingerprint", fp[:8], "--home", trump, "--no-qr")
    assert r.code == 0
    assert pouch("fingerprint", fp[:7], "--home", trump).code == 2

    # refusing your own card
    r = pouch("contacts", "add", tmp_path / "kim.card", "--home", kim)
    assert (r.code, r.err) == (2, "error: that is your own card\n")


def test_one_name_one_key(homes: dict[str, Path], tmp_path: Path) -> None:
    """A second card under a contact's name, with another key (an impostor,
    or a new key): refused, loudly, unless given a name of its own."""
    kim = homes["kim"]
    assert pouch("contacts", "add", tmp_path / "trump.card", "--home", kim).code == 0
    other = tmp_path / "impostor"
    pouch("init", "--name", "Donald J. Trump", "--no-passphrase", "--home", other)
    pouch("card", "-o", tmp_path / "imp.card", "--home", other)
    real = pouch("contacts", "list", "--json", "--home", kim).out
    r = pouch("contacts", "add", tmp_path / "imp.card", "--home", kim)
    assert r.code == 10
    assert r.err.startswith("error: you already have a contact called 'Donald J. Trump', "
                            "with ANOTHER KEY\n")  # fmt: skip
    assert f"contacts add {tmp_path / 'imp.card'} --as 'ANOTHER NAME'" in r.err
    assert pouch("contacts", "list", "--json", "--home", kim).out == real

    r = pouch("contacts", "add", tmp_path / "imp.card", "--as", "Donald (new key?)", "--home", kim)
    assert r.code == 0 and r.out.startswith(b"Added Donald (new key?)"), r.err
    assert "their card calls them 'Donald J. Trump'" in r.err
    # A prefix of a name, in any case, names one contact, or lists them all.
    r = pouch("fingerprint", "donald", "--no-qr", "--home", kim)
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0] == "error: 'donald' names 2 contacts"
    assert len([ln for ln in lines if "  Donald" in ln]) == 2
    r = pouch("fingerprint", "donald j", "--no-qr", "--home", kim)
    assert r.code == 0 and b"and Donald J. Trump" in r.out
    # Renamed, then removed: its name is free again, the other stays.
    r = pouch("contacts", "rename", "Donald (new", "Impostor", "--home", kim)
    assert r.code == 0 and b"is now called Impostor" in r.out
    r = pouch("contacts", "rename", "Impostor", "Donald J. Trump", "--home", kim)
    assert r.code == 10 and "is already the name of another contact" in r.err
    # --as for a card already held points to rename.
    r = pouch("contacts", "add", tmp_path / "imp.card", "--as", "Other", "--home", kim)
    assert r.code == 2 and "you already have this card, as 'Impostor'" in r.err
    # Forgetting a contact is asked about at a terminal; a script says --yes.
    r = pouch("contacts", "remove", "impostor", "--home", kim)
    assert r.code == 2 and "forgetting Impostor needs a yes" in r.err
    assert pouch("contacts", "remove", "impostor", "--yes", "--home", kim).code == 0
    names = [c["name"] for c in json.loads(pouch("contacts", "list", "--json", "--home", kim).out)]
    assert names == ["Donald J. Trump"]


def test_a_tampered_card_is_refused(homes: dict[str, Path], tmp_path: Path) -> None:
    doc = json.loads((tmp_path / "trump.card").read_bytes())
    payload = json.loads(base64.b64decode(doc["payload"]))
    payload["name"] = "Kim Yong-chol"
    doc["payload"] = base64.b64encode(_canonical.dumps(payload)).decode()
    bad = tmp_path / "bad.card"
    bad.write_bytes(_canonical.dumps(doc))
    r = pouch("contacts", "add", bad, "--home", homes["kim"])
    assert r.code == 11 and "card statement" in r.err


def test_a_readable_key_file_is_refused(homes: dict[str, Path]) -> None:
    key = homes["kim"] / "identity.key"
    os.chmod(key, 0o640)
    r = pouch("key", "export", "--age", "--home", homes["kim"])
    assert r.code == 10 and "others can read it" in r.err


def test_the_exported_age_key_opens_what_is_sealed_to_the_card(
    homes: dict[str, Path], tmp_path: Path, age_cli: str
) -> None:
    """The escape hatch: any age implementation can open the envelope."""
    card = Card.from_bytes((tmp_path / "kim.card").read_bytes().strip())
    key = tmp_path / "kim-age.key"
    key.write_bytes(pouch("key", "export", "--age", "--classic", "--home", homes["kim"]).out)
    key.chmod(0o600)
    sealed = pouch("age", "-r", str(card.x25519), input=b"letter").out
    assert run([age_cli, "-d", "-i", key], input=sealed).out == b"letter"
    # Without --classic, one file holds both keys and opens either envelope;
    # -o writes it private (a shell's redirect would make it 0644).
    both = tmp_path / "kim-both.key"
    r = pouch("key", "export", "--age", "-o", both, "--home", homes["kim"])
    assert r.code == 0 and "Wrote 2 age identities" in r.err, r.err
    assert both.stat().st_mode & 0o777 == 0o600
    assert both.read_text().count("AGE-SECRET-KEY-") == 2
    assert str(card.pq) in both.read_text() and str(card.x25519) in both.read_text()
    for recipient in (card.pq, card.x25519):
        sealed = pouch("age", "-r", str(recipient), input=b"letter").out
        assert pouch("age", "-d", "-i", both, input=sealed).out == b"letter"
    r = pouch("key", "export", "--age", "-o", both, "--home", homes["kim"])
    assert r.code == 10 and "already exists" in r.err


@pytest.mark.parametrize("name", ["Kim\u202eJong", "Kim\x1b[1A", "Kim\u2028", "Kim\x9b31m", " Kim"])
def test_names_that_could_disguise_themselves_are_refused(name: str) -> None:
    from pouch.errors import KeyFormatError
    from pouch.identity import check_name

    with pytest.raises(KeyFormatError):
        check_name(name)


def test_a_card_with_a_non_string_key_is_refused() -> None:
    kim = _identity("Kim Jong-un")
    payload = json.loads(base64.b64decode(json.loads(kim.card().encode())["payload"]))
    payload["age"]["x25519"] = 7
    forged = statements.sign("card", payload, [("k", kim.signing)])
    with pytest.raises(StatementError, match="bad age recipients"):
        Card.from_bytes(forged.encode())


def test_what_is_not_a_card_is_named(homes: dict[str, Path], tmp_path: Path) -> None:
    kim = homes["kim"]
    r = pouch("contacts", "add", "/etc/passwd", "--home", kim)
    assert r.code == 11 and r.err.startswith("error: this is not a pouch card\n"), r.err
    assert "Expecting value" not in r.err
    credential = tmp_path / "envoy.credential"
    r = pouch("accredit", tmp_path / "trump.card", "--role", "envoy", "-o", credential,
              "--home", kim)  # fmt: skip
    assert r.code == 0, r.err
    r = pouch("contacts", "add", credential, "--home", kim)
    assert r.code == 11 and r.err == (
        "error: this is a credential, not a card\nhint: keep it with 'pouch credentials add FILE'\n"
    )


def test_conveniences(homes: dict[str, Path], tmp_path: Path) -> None:
    kim = homes["kim"]
    assert pouch("contacts", "add", tmp_path / "trump.card", "--home", kim).code == 0
    for args in (["--version"], ["age", "--version"]):
        r = pouch(*args)
        assert r.code == 0 and b", version " in r.out
    r = pouch("fingerprint", "donald", "--json", "--home", kim)
    number = json.loads(r.out)
    assert number["name"] == "Donald J. Trump" and len(number["safety_number"].split()) == 12
    # click's own errors read like pouch's, exit 2.
    r = pouch("seal", "--home", kim)
    assert r.code == 2 and r.err == (
        "error: Missing option '-t' / '--to'.\nhint: 'pouch seal --help' shows how to use it\n"
    )
    # With --json, an error is JSON on stdout too.
    r = pouch("fingerprint", "nobody", "--json", "--home", kim)
    assert r.code == 2 and r.err.startswith("error: no contact named 'nobody'")
    error = json.loads(r.out)["error"]
    assert (error["kind"], error["exit_code"]) == ("UsageError", 2)
    assert error["message"] == "no contact named 'nobody'"
    # A home with no identity says so, whatever the command.
    r = pouch("contacts", "list", "--home", tmp_path / "nowhere")
    assert r.code == 9 and "no pouch identity in" in r.err and "Errno" not in r.err


def test_shell_completion_knows_contact_names(homes: dict[str, Path], tmp_path: Path) -> None:
    """Through bash itself, with the script click writes: a name with spaces
    is completed as one word."""
    kim = homes["kim"]
    assert pouch("contacts", "add", tmp_path / "trump.card", "--home", kim).code == 0
    script = pouch(env={"_POUCH_COMPLETE": "bash_source"}).out.decode()
    (tmp_path / "complete.sh").write_text(script)
    probe = (
        f'source {tmp_path / "complete.sh"}; COMP_WORDS=(pouch seal -t "$WORD"); COMP_CWORD=3; '
        '_pouch_completion pouch; printf "[%s]\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{POUCH.parent}:{os.environ['PATH']}", "POUCH_HOME": str(kim)}
    done = subprocess.run(["bash", "-c", probe], env={**env, "WORD": "do"}, capture_output=True)
    assert done.stdout.decode() == "[Donald\\ J.\\ Trump]\n", done.stderr
    done = subprocess.run(["bash", "-c", probe], env={**env, "WORD": "zz"}, capture_output=True)
    assert done.stdout.decode() == "[]\n"


def test_a_name_cannot_pass_for_a_fingerprint_or_a_look_alike(
    homes: dict[str, Path], tmp_path: Path
) -> None:
    kim = homes["kim"]
    assert pouch("contacts", "add", tmp_path / "trump.card", "--home", kim).code == 0
    donald = json.loads(pouch("fingerprint", "donald", "--json", "--home", kim).out)["fingerprint"]
    for i, name in enumerate([donald[:16], "Donald\u00a0J.  Trump"]):
        other = tmp_path / f"fake{i}"
        pouch("init", "--name", name, "--no-passphrase", "--home", other)
        pouch("card", "-o", tmp_path / f"fake{i}.card", "--home", other)
        r = pouch("contacts", "add", tmp_path / f"fake{i}.card", "--home", kim)
        assert r.code in (2, 10), r.err
        assert ("looks like a fingerprint" if i == 0 else "ANOTHER KEY") in r.err
    # Under a name of its own, the prefix still names Donald, and only him.
    r = pouch("contacts", "add", tmp_path / "fake0.card", "--as", "Hexy", "--home", kim)
    assert r.code == 0, r.err
    r = pouch("fingerprint", donald[:16], "--json", "--home", kim)
    assert r.code == 0 and json.loads(r.out)["fingerprint"] == donald
