"""pouch seal, open and inspect: what a person sees, exit codes, and files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import blake3
import pytest

from pouch import container, letter
from pouch.identity import Card
from pouch.letter.order import first

from .conftest import POUCH as POUCH_BIN
from .conftest import pouch, run
from .test_letter import _envelope, _segments, _split

LETTER = b"Dear Mr. President,\n\nWe remain ready to sit down at any time.\n"


@pytest.fixture
def desks(tmp_path: Path) -> dict[str, Path]:
    """Three homes that exchanged cards and verified each other."""
    names = {"trump": "Donald J. Trump", "kim": "Kim Jong-un", "pompeo": "Mike Pompeo"}
    for who, name in names.items():
        assert pouch("init", "--name", name, "--no-passphrase", "--home", tmp_path / who).code == 0
        pouch("card", "-o", tmp_path / f"{who}.card", "--home", tmp_path / who)
    for who in names:
        for other in names:
            if other != who:
                r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified",
                          "--home", tmp_path / who)  # fmt: skip
                assert r.code == 0, r.err
    return {who: tmp_path / who for who in names}


def test_seal_from_stdin_and_open(desks: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "reply.pouch"
    r = pouch("seal", "-t", "Donald J. Trump", "--subject", "Your letter of 24 May",
              "-o", out, "--home", desks["kim"], input=LETTER)  # fmt: skip
    assert r.code == 0, r.err
    assert "post-quantum" in r.err and "Sealed to Donald J. Trump" in r.err
    letter_id = r.err.split("letter    ")[1].split()[0]
    r = pouch("open", out, "--home", desks["trump"])
    assert r.code == 0, r.err
    assert r.out == LETTER
    assert "From:        Kim Jong-un" in r.err and "(verified)" in r.err
    assert f"Letter:      {letter_id}" in r.err
    assert "Subject:     Your letter of 24 May" in r.err
    assert "every segment signature verified" in r.err

    # --json, and a reply that refers to it
    summary = json.loads(pouch("open", out, "--json", "--home", desks["trump"]).out)
    assert summary["letter_id"] == letter_id and summary["body"] == LETTER.decode()
    assert summary["from"]["verified"] and summary["encryption"] == "post-quantum"
    r = pouch("seal", "-t", "Kim Jong-un", "--reply-to", letter_id, "-o", tmp_path / "re.pouch",
              "--home", desks["trump"], input=b"See you in Singapore.")  # fmt: skip
    assert r.code == 0, r.err
    again = json.loads(pouch("open", tmp_path / "re.pouch", "--json", "--home", desks["kim"]).out)
    assert again["in_reply_to"] == letter_id


def test_attachments_to_a_folder_and_inspect(desks: dict[str, Path], tmp_path: Path) -> None:
    annex = tmp_path / "annex.bin"
    annex.write_bytes(os.urandom(2_500_000))
    body = tmp_path / "letter.txt"
    body.write_bytes(LETTER)
    sealed = tmp_path / "l.pouch"
    r = pouch("seal", "-t", "Donald J. Trump", "-t", "Mike Pompeo", "-A", annex, "-o", sealed,
              body, "--home", desks["kim"])  # fmt: skip
    assert r.code == 0, r.err
    env = r.err.split("envelope  ")[1].split()[1]

    info = json.loads(pouch("inspect", sealed, "--json").out)
    assert info["envelope_id"] == env and info["stanzas"] == 3  # two, and Kim's own copy
    assert info["stanza_types"] == ["mlkem768x25519"] and info["records"] == []
    extracted = tmp_path / "bare.age"
    assert pouch("inspect", sealed, "--extract-age", extracted).code == 0
    assert blake3.blake3(extracted.read_bytes()).hexdigest() == env

    folder = tmp_path / "inbox"
    folder.mkdir()
    r = pouch("open", sealed, "-o", folder, "--home", desks["pompeo"])
    assert r.code == 0, r.err
    files = sorted(p.name for p in folder.iterdir())
    assert "annex.bin" in files and len(files) == 2
    assert (folder / "annex.bin").read_bytes() == annex.read_bytes()
    # a bare age file opens too
    assert pouch("open", extracted, "--home", desks["trump"]).out == LETTER
    # opening it again into the same folder finds its parts there, byte for byte
    r = pouch("open", sealed, "-o", folder, "--home", desks["pompeo"])
    assert r.code == 0 and "replay" in r.err
    # a different file under one of its names is never overwritten without --force
    (folder / "annex.bin").write_bytes(b"something else")
    r = pouch("open", sealed, "-o", folder, "--home", desks["pompeo"])
    assert r.code == 10 and "already exist" in r.err
    assert (folder / "annex.bin").read_bytes() == b"something else"
    assert pouch("open", sealed, "-o", folder, "--force", "--home", desks["pompeo"]).code == 0
    assert (folder / "annex.bin").read_bytes() == annex.read_bytes()


def test_armored_container(desks: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "l.txt"
    assert pouch("seal", "-t", "Kim Jong-un", "--armor", "-o", out, "--home", desks["trump"],
                 input=LETTER).code == 0  # fmt: skip
    assert out.read_text().startswith("-----BEGIN POUCH CONTAINER-----\n")
    assert pouch("open", out, "--home", desks["kim"]).out == LETTER
    assert json.loads(pouch("inspect", out, "--json").out)["format"] == "pouch container v1"


def test_unverified_contacts(desks: dict[str, Path], tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    pouch("init", "--name", "Kim Yong-chol", "--no-passphrase", "--home", stranger)
    pouch("card", "-o", tmp_path / "chol.card", "--home", stranger)
    pouch("contacts", "add", tmp_path / "chol.card", "--home", desks["trump"])
    r = pouch("seal", "-t", "Kim Yong-chol", "--home", desks["trump"], input=b"x")
    assert r.code == 10 and r.err.startswith("error: Kim Yong-chol: never verified")
    sealed = tmp_path / "x.pouch"
    r = pouch("seal", "-t", "Kim Yong-chol", "--allow-unverified", "-o", sealed,
              "--home", desks["trump"], input=b"x")  # fmt: skip
    assert r.code == 0
    # the stranger does not know Trump: a loud warning, and the letter still shows
    r = pouch("open", sealed, "--home", stranger)
    assert r.code == 0 and r.out == b"x"
    assert "WARNING: the sender is not one of your contacts" in r.err
    # Kim knows Trump's card but never verified it (added without --verified)
    pouch("contacts", "add", tmp_path / "trump.card", "--home", stranger)
    r = pouch("open", sealed, "--home", stranger)
    assert "warning: Donald J. Trump was never verified" in r.err


def test_forwarded_letter_is_refused(desks: dict[str, Path], tmp_path: Path, age_cli: str) -> None:
    """Kim extracts the age ciphertext, decrypts it with his exported key,
    re-encrypts the inner letter to Pompeo with stock age, and hands it over."""
    sealed = tmp_path / "l.pouch"
    pouch("seal", "-t", "Kim Jong-un", "--classic", "-o", sealed, "--home", desks["trump"],
          input=LETTER)  # fmt: skip
    bare = tmp_path / "bare.age"
    pouch("inspect", sealed, "--extract-age", bare)
    key = tmp_path / "kim.key"
    key.write_bytes(pouch("key", "export", "--age", "--classic", "--home", desks["kim"]).out)
    key.chmod(0o600)
    inner = run([age_cli, "-d", "-i", key, bare])
    assert inner.code == 0 and inner.out.startswith(b"pouch-letter/v1\n")
    pompeo = Card.from_bytes((tmp_path / "pompeo.card").read_bytes().strip())
    forwarded = tmp_path / "fwd.age"
    assert run([age_cli, "-r", str(pompeo.x25519), "-o", forwarded], input=inner.out).code == 0
    r = pouch("open", forwarded, "--home", desks["pompeo"])
    assert r.code == 12
    assert r.err.startswith("error: not addressed to you: this letter was forwarded")
    assert r.out == b""


def test_nothing_is_released_before_the_final_segment(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    """A co-recipient corrupts the last segment: no file appears, stdout gets
    nothing, unless --stream asked for segments as they verify."""
    from .vectors.generate import vector_identity

    sender, kim, chol = (vector_identity(n) for n in ("Sender", "Kim Jong-un", "Kim Yong-chol"))
    body = os.urandom(2 * (1 << 20) + 7)
    dst = io.BytesIO()
    letter.seal(sender, [kim.card(), chol.card()], io.BytesIO(body), dst, stream="1" * 32,
                 order=first([kim.fingerprint, chol.fingerprint]))  # fmt: skip
    h, nonce, key, plain = _split(dst.getvalue(), chol)
    prefix, segs = _segments(plain)
    last = bytearray(segs[-1])
    last[20] ^= 1
    damaged = tmp_path / "damaged.pouch"
    damaged.write_bytes(_envelope(h, nonce, key, prefix + b"".join(segs[:-1]) + bytes(last)))
    kim_home = tmp_path / "kimhome"
    _install(kim_home, kim)

    folder = tmp_path / "inbox"
    folder.mkdir()
    r = pouch("open", damaged, "-o", folder, "--home", kim_home)
    assert r.code == 11 and "is not signed by the sender" in r.err
    assert list(folder.iterdir()) == []
    r = pouch("open", damaged, "--home", kim_home)
    assert r.code == 11 and r.out == b""
    r = pouch("open", damaged, "--stream", "--home", kim_home)
    assert r.code == 11 and r.out == body  # every data segment verified; the final did not


def _install(home: Path, identity) -> None:  # type: ignore[no-untyped-def]
    """A home for a fixed-key identity, as pouch init would write it."""
    from pouch.home import Home

    Home(home).create(identity, None)


def test_hostile_attachment_names_stay_in_the_folder(tmp_path: Path) -> None:
    from .vectors.generate import vector_identity

    sender, kim = vector_identity("Sender"), vector_identity("Kim Jong-un")
    dst = io.BytesIO()
    hostile = [("../../etc/passwd", b"root"), ("..", b"dots"), ("a\x1bb", b"esc")]
    letter.seal(sender, [kim.card()], io.BytesIO(b"see attached"), dst, stream="1" * 32,
                 order=first([kim.fingerprint]),
                 attachments=[(n, io.BytesIO(d)) for n, d in hostile])  # fmt: skip
    sealed = tmp_path / "l.pouch"
    sealed.write_bytes(dst.getvalue())
    home = tmp_path / "kim"
    _install(home, kim)
    folder = tmp_path / "in" / "box"
    folder.mkdir(parents=True)
    r = pouch("open", sealed, "-o", folder, "--home", home)
    assert r.code == 0, r.err
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["passwd", "attachment-2", "a_b", f"letter-{r.err.split('Letter:      ')[1][:12]}.txt"]
    )
    assert (folder / "passwd").read_bytes() == b"root"
    assert not (tmp_path / "etc").exists()


def test_error_codes(desks: dict[str, Path], tmp_path: Path) -> None:
    sealed = tmp_path / "l.pouch"
    pouch("seal", "-t", "Kim Jong-un", "-o", sealed, "--home", desks["trump"], input=LETTER)
    r = pouch("open", sealed, "--home", desks["pompeo"])
    assert r.code == 4  # no matching key
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    r = pouch("open", junk, "--home", desks["kim"])
    assert r.code == 5 and "not a pouch container" in r.err
    os.chmod(desks["kim"] / "identity.key", 0o644)
    r = pouch("open", sealed, "--home", desks["kim"])
    assert r.code == 10 and "others can read it" in r.err


def test_trailer_records_and_a_torn_append(desks: dict[str, Path], tmp_path: Path) -> None:
    sealed = tmp_path / "l.pouch"
    pouch("seal", "-t", "Kim Jong-un", "-o", sealed, "--home", desks["trump"], input=LETTER)
    with container.load(sealed) as c:
        # Two appends through one handle: each reads the trailer again.
        c.append(container.Record(7, b"a statement"))
        c.append(container.Record(8, b"another"))
    with open(sealed, "ab") as f:
        f.write(container.encode_record(container.Record(9, b"torn"))[:-3])
    info = json.loads(pouch("inspect", sealed, "--json").out)
    assert info["records"] == [{"type": 7, "size": 11}, {"type": 8, "size": 7}]
    assert info["trailer_torn"]
    assert pouch("open", sealed, "--home", desks["kim"]).out == LETTER
    with container.load(sealed) as c:
        c.append(container.Record(10, b"after the tear"))
    info = json.loads(pouch("inspect", sealed, "--json").out)
    assert [r["type"] for r in info["records"]] == [7, 8, 10] and not info["trailer_torn"]
    # damage inside a record with another after it is refused (the body of
    # record 8: the last record is 24 bytes, record 8's body ends 4 before it)
    data = bytearray(sealed.read_bytes())
    data[-24 - 4 - 3] ^= 1
    sealed.write_bytes(bytes(data))
    assert pouch("inspect", sealed).code == 5


def test_what_a_sender_controls_cannot_rewrite_the_terminal(tmp_path: Path) -> None:
    from .vectors.generate import vector_identity

    sender, kim = vector_identity("Sender"), vector_identity("Kim Jong-un")
    dst = io.BytesIO()
    fake = "\x1b[1A\x1b[2KFrom:        Donald J. Trump  (verified)"
    letter.seal(sender, [kim.card()], io.BytesIO(b"hi\x1b]0;owned\x07"), dst, stream="1" * 32,
                 order=first([kim.fingerprint]), subject=fake,
                 attachments=[("a\u202etxt.exe", io.BytesIO(b"x"))])  # fmt: skip
    sealed = tmp_path / "l.pouch"
    sealed.write_bytes(dst.getvalue())
    home = tmp_path / "kim"
    _install(home, kim)
    r = pouch("open", sealed, "--home", home)
    assert r.code == 0
    assert "\x1b" not in r.err and "\u202e" not in r.err
    assert "Subject:     \\x1b[1A\\x1b[2KFrom:" in r.err
    assert "WARNING: the sender is not one of your contacts" in r.err
    assert r.out == b"hi\x1b]0;owned\x07"  # not a terminal: the exact bytes


def test_publishing_is_all_or_nothing(desks: dict[str, Path], tmp_path: Path) -> None:
    annex = tmp_path / "annex.bin"
    annex.write_bytes(b"annex")
    sealed = tmp_path / "l.pouch"
    pouch("seal", "-t", "Kim Jong-un", "-A", annex, "-o", sealed, "--home", desks["trump"],
          input=LETTER)  # fmt: skip
    folder = tmp_path / "inbox"
    (folder / "annex.bin").mkdir(parents=True)  # in the way, and not a file
    for force in ([], ["--force"]):
        r = pouch("open", sealed, "-o", folder, *force, "--home", desks["kim"])
        assert r.code == 10 and "is not a file: nothing was written" in r.err
        assert [p.name for p in folder.iterdir()] == ["annex.bin"]


def _small_files() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_full_disk_is_a_file_error(desks: dict[str, Path], tmp_path: Path) -> None:
    annex = tmp_path / "annex.bin"
    annex.write_bytes(os.urandom(3 << 20))
    args = ["seal", "-t", "Kim Jong-un", "-A", annex, "-o", tmp_path / "l.pouch"]
    r = run([str(a) for a in [POUCH_BIN, *args, "--home", desks["trump"]]], input=LETTER,
            preexec=_small_files)  # fmt: skip
    out = tmp_path / "l.pouch"
    assert r.code == 9 and r.err.startswith(f"error: cannot write {out}: File too large"), r.err
    assert not (tmp_path / "l.pouch").exists()
    pouch(*args, "--home", desks["trump"], input=LETTER)
    folder = tmp_path / "inbox"
    folder.mkdir()
    r = run([str(POUCH_BIN), "open", str(tmp_path / "l.pouch"), "-o", str(folder), "--home",
             str(desks["kim"])], preexec=_small_files)  # fmt: skip
    assert r.code == 9 and "File too large" in r.err, r.err
    assert list(folder.iterdir()) == []


def test_a_large_letter_on_every_core(desks: dict[str, Path], tmp_path: Path) -> None:
    """Nine MiB: pouch seal and open take the parallel paths (more than 8 MiB,
    regular files). The attachment arrives whole; a flipped bit in the middle
    of the ciphertext leaves nothing in the folder."""
    annex = tmp_path / "annex.bin"
    annex.write_bytes(os.urandom(9 << 20))
    body = tmp_path / "body.txt"
    body.write_bytes(LETTER)
    sealed = tmp_path / "large.pouch"
    r = pouch("seal", "-t", "Kim Jong-un", "-A", annex, "-o", sealed, body,
              "--home", desks["trump"])  # fmt: skip
    assert r.code == 0, r.err
    folder = tmp_path / "inbox"
    folder.mkdir()
    r = pouch("open", sealed, "-o", folder, "--home", desks["kim"])
    assert r.code == 0, r.err
    assert (folder / "annex.bin").read_bytes() == annex.read_bytes()
    for f in folder.iterdir():
        f.unlink()

    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x04
    damaged = tmp_path / "damaged.pouch"
    damaged.write_bytes(bytes(data))
    r = pouch("open", damaged, "-o", folder, "--home", desks["kim"])
    assert r.code == 7 and "does not authenticate" in r.err
    assert list(folder.iterdir()) == []


def test_paths_are_named_as_they_were_given(desks: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(LETTER)
    (tmp_path / "l.pouch").write_bytes(b"already here")
    r = pouch("seal", "-t", "Kim Jong-un", "-o", "./l.pouch", body, "--home", desks["trump"],
              cwd=tmp_path)  # fmt: skip
    assert r.code == 10 and r.err.startswith("error: ./l.pouch already exists"), r.err
    r = pouch("open", "l.pouch", "-o", "nowhere/deeper/", "--home", desks["kim"], cwd=tmp_path)
    assert r.code == 9, r.err
    assert r.err.startswith("error: cannot make the folder nowhere/deeper/: its parent folder")
    # The letter id is checked before the recipients are looked up.
    r = pouch("seal", "-t", "Nobody", "--reply-to", "zz", body, "--home", desks["trump"])
    assert r.code == 2 and "'zz' is not a letter id" in r.err, r.err


def test_ids_by_prefix(desks: dict[str, Path], tmp_path: Path) -> None:
    """Any unique prefix of 8 hex digits names a letter, by its letter id or
    its envelope id, wherever an id is taken."""
    first, second = tmp_path / "1.pouch", tmp_path / "2.pouch"
    for out in (first, second):
        r = pouch("seal", "-t", "kim", "-o", out, "--home", desks["trump"], input=LETTER)
        assert r.code == 0, r.err
        assert pouch("open", out, "--home", desks["kim"]).code == 0
    sent = json.loads(pouch("open", first, "--json", "--home", desks["kim"]).out)
    letter_id, envelope = sent["letter_id"], sent["envelope_id"]
    r = pouch("seal", "-t", "donald", "--reply-to", envelope[:8].upper(), "-o", tmp_path / "re",
              "--home", desks["kim"], input=b"Yes.\n")  # fmt: skip
    assert r.code == 0, r.err
    assert pouch("open", tmp_path / "re", "--home", desks["trump"]).code == 0
    r = pouch("thread", letter_id[:8], "--home", desks["trump"])
    assert r.code == 0 and r.out.count(b"\n") >= 2, r.err
    reply = json.loads(pouch("open", tmp_path / "re", "--json", "--home", desks["trump"]).out)
    assert reply["in_reply_to"] == letter_id
    r = pouch("thread", "0" * 7, "--home", desks["trump"])
    assert r.code == 2 and "is not a letter id" in r.err


def test_open_makes_its_folder(desks: dict[str, Path], tmp_path: Path) -> None:
    """-o DIR makes DIR (not its parents); a letter that does not open
    leaves no folder behind."""
    letter = tmp_path / "l.pouch"
    r = pouch("seal", "-t", "Kim", "-o", letter, "--home", desks["trump"], input=LETTER)
    assert r.code == 0, r.err
    r = pouch("open", letter, "-o", tmp_path / "new", "--home", desks["pompeo"])
    assert r.code != 0 and not (tmp_path / "new").exists()
    r = pouch("open", letter, "-o", tmp_path / "new", "--home", desks["kim"])
    assert r.code == 0, r.err
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    (saved,) = (tmp_path / "new").iterdir()
    assert saved.name.startswith("letter-") and saved.read_bytes() == LETTER


def test_a_letter_for_someone_else_says_so(desks: dict[str, Path], tmp_path: Path) -> None:
    letter = tmp_path / "l.pouch"
    r = pouch("seal", "-t", "Kim", "-o", letter, "--home", desks["trump"], input=LETTER)
    assert r.code == 0, r.err
    other = tmp_path / "other"
    assert pouch("init", "--name", "Moon Jae-in", "--no-passphrase", "--home", other).code == 0
    r = pouch("open", letter, "-o", tmp_path / "new", "--home", other)
    assert r.code == 4 and r.err.startswith("error: this letter is not addressed to you\n")
    assert "its envelope has 2 recipients" in r.err and "yours are age1pq1" in r.err
    assert not (tmp_path / "new").exists()


def test_what_discloses_a_letter_is_private(desks: dict[str, Path], tmp_path: Path) -> None:
    """The parts of an opened letter are 0600; a public card is 0644, even
    under a strict umask."""
    letter, annex = tmp_path / "l.pouch", tmp_path / "annex.txt"
    annex.write_text("the menu\n")
    r = pouch("seal", "-t", "Kim", "-A", annex, "-o", letter, "--home", desks["trump"],
              input=LETTER)  # fmt: skip
    assert r.code == 0, r.err
    r = pouch("open", letter, "-o", tmp_path / "in", "--home", desks["kim"])
    assert r.code == 0, r.err
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "in").iterdir()}
    assert len(modes) == 2 and set(modes.values()) == {0o600}, modes
    card = tmp_path / "strict.card"
    r = pouch("card", "-o", card, "--home", desks["kim"], preexec=lambda: os.umask(0o077))
    assert r.code == 0 and card.stat().st_mode & 0o777 == 0o644
