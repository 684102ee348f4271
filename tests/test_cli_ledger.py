"""The register's ledger through the CLI: order, gaps, replays, forks,
overlaps, lost state, threads, states and db check (SPEC.md 5.3)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from .conftest import pouch


def _seal(home: Path, to: str, out: Path, text: str, *extra: str) -> str:
    body = out.with_suffix(".txt")
    body.write_text(text)
    r = pouch("seal", "-t", to, "--subject", text[:20], "-o", out, *extra, body, "--home", home)
    assert r.code == 0, r.err
    return r.err.split("letter    ")[1].split()[0]


def _open(home: Path, letter: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    r = pouch("open", letter, "--json", *extra, "--home", home)
    return r.code, (json.loads(r.out) if r.code == 0 else {}), r.err


def _letters(home: Path, *name: str) -> dict[str, Any]:
    r = pouch("letters", *name, "--json", "--home", home)
    assert r.code == 0, r.err
    out: dict[str, Any] = json.loads(r.out)
    return out


def test_in_order_gap_filled_and_replay(desks: dict[str, Path], tmp_path: Path) -> None:
    sent = [tmp_path / f"l{i}.pouch" for i in (1, 2, 3)]
    ids = [_seal(desks["trump"], "Kim Jong-un", p, f"Letter {i}") for i, p in enumerate(sent, 1)]
    code, got, _ = _open(desks["kim"], sent[0])
    assert code == 0 and got["order"]["arrival"] == "in order" and got["order"]["seq"] == 1
    code, got, _ = _open(desks["kim"], sent[2])
    assert code == 0 and got["order"]["arrival"] == "gap" and got["order"]["missing"] == [2]
    assert got["order"]["notes"] == [
        "letter #2 from Donald J. Trump has not arrived; #3 refers to it"
    ]
    ledger = _letters(desks["kim"], "Donald J. Trump")
    assert [m["seq"] for m in ledger["missing"]] == [2]
    code, got, _ = _open(desks["kim"], sent[1])
    assert code == 0 and got["order"]["arrival"] == "fills a gap"
    assert _letters(desks["kim"])["missing"] == []
    # The same letter again: recorded once, reported, exit 0.
    code, got, _ = _open(desks["kim"], sent[1])
    assert code == 0 and got["order"]["arrival"] == "replay"
    assert got["order"]["notes"][0].startswith("already recorded")
    received = [x for x in _letters(desks["kim"])["letters"] if x["direction"] == "received"]
    assert sorted((x["id"], x["seq"], x["subject"]) for x in received) == sorted([
        (ids[0], 1, "Letter 1"), (ids[1], 2, "Letter 2"), (ids[2], 3, "Letter 3")
    ])  # fmt: skip
    for home in desks.values():
        assert pouch("db", "check", "--home", home).code == 0


def test_a_fork_is_loud_and_both_letters_are_kept(desks: dict[str, Path], tmp_path: Path) -> None:
    _seal(desks["trump"], "Kim Jong-un", tmp_path / "l1.pouch", "Letter 1")
    # Trump's home is cloned; each copy seals a different letter #2.
    clone = tmp_path / "clone"
    shutil.copytree(desks["trump"], clone)
    a = _seal(desks["trump"], "Kim Jong-un", tmp_path / "a.pouch", "The real #2")
    b = _seal(clone, "Kim Jong-un", tmp_path / "b.pouch", "Another #2")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("l1.pouch", "a.pouch"):
        assert pouch("open", tmp_path / name, "-o", inbox, "--home", desks["kim"]).code == 0
    before = sorted(p.name for p in inbox.iterdir())
    r = pouch("open", tmp_path / "b.pouch", "-o", inbox, "--home", desks["kim"])
    assert r.code == 14 and "FORK" in r.err and "#2" in r.err
    assert sorted(p.name for p in inbox.iterdir()) == before  # nothing written
    ledger = _letters(desks["kim"])
    assert ledger["forks"][0]["seq"] == 2
    assert {ledger["forks"][0]["letter"], ledger["forks"][0]["other"]} == {a, b}
    states = {x["id"]: x["state"] for x in ledger["letters"]}
    assert states[a] == "received" and states[b] == "forked"
    archive = desks["kim"] / "archive"
    assert len(list(archive.iterdir())) == 3  # both #2s kept as evidence
    assert pouch("db", "check", "--home", desks["kim"]).code == 0


def test_lost_state_is_refused_then_a_new_stream_heals_it(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    _seal(trump, "Kim Jong-un", tmp_path / "l1.pouch", "Letter 1")
    backup = tmp_path / "backup"
    shutil.copytree(trump, backup)
    for i in (2, 3):
        _seal(trump, "Kim Jong-un", tmp_path / f"l{i}.pouch", f"Letter {i}")
    for i in (1, 2, 3):
        assert _open(kim, tmp_path / f"l{i}.pouch")[0] == 0
    _seal(kim, "Donald J. Trump", tmp_path / "reply.pouch", "Kim's reply")
    # Trump's disk dies; his home comes back from the backup, without #2 and #3.
    shutil.rmtree(trump)
    shutil.copytree(backup, trump)
    code, got, err = _open(trump, tmp_path / "reply.pouch")
    assert code == 0, err
    r = pouch("seal", "-t", "Kim Jong-un", "-o", tmp_path / "l4.pouch", tmp_path / "l1.txt",
              "--home", trump)  # fmt: skip
    assert r.code == 15 and "acknowledges your letter #3" in r.err and "pouch restore" in r.err
    assert not (tmp_path / "l4.pouch").exists()
    assert pouch("restore", "--home", trump).code == 0
    # The new stream continues from #3, which Kim acknowledged: no overlap.
    _seal(trump, "Kim Jong-un", tmp_path / "l4.pouch", "After the restore")
    code, got, err = _open(kim, tmp_path / "l4.pouch")
    assert code == 0 and got["order"]["seq"] == 1 and got["order"]["notes"] == [], err
    for home in desks.values():
        assert pouch("db", "check", "--home", home).code == 0


def test_an_overlap_is_amber_until_a_later_letter_heals_it(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    _seal(trump, "Kim Jong-un", tmp_path / "l1.pouch", "Letter 1")
    backup = tmp_path / "backup"
    shutil.copytree(trump, backup)
    _seal(trump, "Kim Jong-un", tmp_path / "l2.pouch", "Letter 2")
    for i in (1, 2):
        assert _open(kim, tmp_path / f"l{i}.pouch")[0] == 0
    # Restored and restarted before hearing from Kim: it continues from #1.
    shutil.rmtree(trump)
    shutil.copytree(backup, trump)
    assert pouch("restore", "--home", trump).code == 0
    _seal(trump, "Kim Jong-un", tmp_path / "n1.pouch", "New stream 1")
    code, got, err = _open(kim, tmp_path / "n1.pouch")
    notes = got["order"]["notes"]
    assert (
        code == 0 and len(notes) == 1 and notes[0].startswith("OVERLAP") and "#2 to #2" in notes[0]
    )
    # Kim answers; his acknowledgment tells Trump where the old stream ended.
    _seal(kim, "Donald J. Trump", tmp_path / "k1.pouch", "Kim's answer")
    assert _open(trump, tmp_path / "k1.pouch")[0] == 0
    _seal(trump, "Kim Jong-un", tmp_path / "n2.pouch", "New stream 2")
    code, got, err = _open(kim, tmp_path / "n2.pouch")
    assert code == 0 and got["order"]["notes"] == [], err


def test_an_acknowledgment_of_a_letter_never_sent_is_reported(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    _seal(trump, "Kim Jong-un", tmp_path / "l1.pouch", "Letter 1")
    assert _open(kim, tmp_path / "l1.pouch")[0] == 0
    # Trump's register forgets letter #1: he never sent it, as far as it knows.
    db = sqlite3.connect(trump / "register.db")
    for table in ("positions", "reservations", "letters"):
        db.execute(f"DELETE FROM {table}")
    db.commit()
    db.close()
    _seal(kim, "Donald J. Trump", tmp_path / "k1.pouch", "Kim's answer")
    r = pouch("open", tmp_path / "k1.pouch", "--home", trump)
    assert r.code == 0 and "ORDER WARNING: ACKNOWLEDGMENT" in r.err and "never sent" in r.err


def test_threads_states_and_receipts(desks: dict[str, Path], tmp_path: Path) -> None:
    trump, kim = desks["trump"], desks["kim"]
    cancel = _seal(trump, "Kim Jong-un", tmp_path / "cancel.pouch", "Cancelling Singapore")
    assert pouch("handover", tmp_path / "cancel.pouch", "--to", "Kim Jong-un",
                 "--home", trump).code == 0  # fmt: skip
    state = {x["id"]: x["state"] for x in _letters(trump)["letters"]}
    assert state[cancel] == "handed over"
    r = pouch("open", tmp_path / "cancel.pouch", "--receipt", tmp_path / "receipt.pouch",
              "--home", kim)  # fmt: skip
    assert r.code == 0, r.err
    assert pouch("receipt", tmp_path / "receipt.pouch", "--home", trump).code == 0
    state = {x["id"]: x["state"] for x in _letters(trump)["letters"]}
    assert state[cancel] == "delivered"
    reply = _seal(kim, "Donald J. Trump", tmp_path / "reply.pouch", "Ready to meet",
                  "--reply-to", cancel)  # fmt: skip
    assert _open(trump, tmp_path / "reply.pouch")[0] == 0
    letters = _letters(trump)["letters"]
    state = {x["id"]: x["state"] for x in letters}
    assert state[cancel] == "answered"
    r = pouch("thread", reply[:12], "--json", "--home", trump)
    assert r.code == 0, r.err
    thread = json.loads(r.out)["thread"]
    # The letter, and what answers it: the receipt and the reply.
    assert (thread[0]["id"], thread[0]["depth"]) == (cancel, 0)
    assert {(x["kind"], x["depth"]) for x in thread[1:]} == {("receipt", 1), ("letter", 1)}
    assert reply in {x["id"] for x in thread}
    # The receipt is a letter in Kim's stream to Trump: #1, and the reply #2.
    received = [x for x in letters if x["direction"] == "received"]
    assert [(x["kind"], x["seq"]) for x in received] == [("receipt", 1), ("letter", 2)]
    text = pouch("letters", "--home", trump).out.decode()
    assert "Cancelling Singapore" in text and "in reply to" in text
    for home in desks.values():
        assert pouch("db", "check", "--home", home).code == 0


def test_db_check_finds_what_is_wrong(desks: dict[str, Path], tmp_path: Path) -> None:
    trump = desks["trump"]
    for i in (1, 2):
        _seal(trump, "Kim Jong-un", tmp_path / f"l{i}.pouch", f"Letter {i}")
    assert pouch("db", "check", "--home", trump).code == 0
    db = sqlite3.connect(trump / "register.db")
    db.execute("UPDATE positions SET prev = ? WHERE seq = 2", ("0" * 64,))
    db.commit()
    db.close()
    next(iter((trump / "archive").iterdir())).unlink()
    r = pouch("db", "check", "--home", trump)
    assert r.code == 9
    assert "names another previous letter" in r.out.decode()
    assert "not in the archive" in r.out.decode()
    # A damaged file: SQLite's own check.
    data = bytearray((trump / "register.db").read_bytes())
    data[5000:5100] = bytes(100)
    (trump / "register.db").write_bytes(bytes(data))
    r = pouch("db", "check", "--home", trump)
    assert r.code == 9 and "error:" in r.err


def test_content_is_sealed_in_the_register(desks: dict[str, Path], tmp_path: Path) -> None:
    _seal(desks["trump"], "Kim Jong-un", tmp_path / "l1.pouch", "Top secret subject")
    raw = (desks["trump"] / "register.db").read_bytes()
    wal = desks["trump"] / "register.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"Top secret" not in raw


def test_a_transcript_is_checked_offline_by_a_third_party(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    import io
    import tarfile

    from pouch import transcript

    trump, kim = desks["trump"], desks["kim"]
    cancel = _seal(trump, "Kim Jong-un", tmp_path / "cancel.pouch", "Cancelling Singapore")
    assert pouch("handover", tmp_path / "cancel.pouch", "--to", "Kim Jong-un",
                 "--home", trump).code == 0  # fmt: skip
    assert pouch("accept", tmp_path / "cancel.pouch", "--home", kim).code == 0
    assert _open(kim, tmp_path / "cancel.pouch")[0] == 0
    _seal(kim, "Donald J. Trump", tmp_path / "reply.pouch", "Ready to meet", "--reply-to", cancel)
    assert _open(trump, tmp_path / "reply.pouch")[0] == 0
    _seal(trump, "Kim Jong-un", tmp_path / "third.pouch", "Hanoi")
    assert _open(kim, tmp_path / "third.pouch")[0] == 0

    bundle = tmp_path / "transcript.tar"
    r = pouch("transcript", "export", "Kim Jong-un", "-o", bundle, "--decrypted", "--home", trump)
    assert r.code == 0, r.err
    assert bundle.stat().st_mode & 0o777 == 0o600  # it discloses every letter
    cards = ["--card", tmp_path / "trump.card", "--card", tmp_path / "kim.card"]
    r = pouch("transcript", "verify", bundle, *cards, "--json")
    assert r.code == 0, r.out
    report = json.loads(r.out)
    assert report["ok"] and report["letters"] == report["verified"] == 3
    text = pouch("transcript", "verify", bundle, *cards).out.decode()
    assert "Donald J. Trump -> Kim Jong-un  #2" in text and "Transcript verifies" in text

    # Sealed, the same correspondence cannot be checked by a third party.
    sealed = tmp_path / "sealed.tar"
    assert pouch("transcript", "export", "Kim Jong-un", "-o", sealed, "--home", trump).code == 0
    assert sealed.stat().st_mode & 0o777 == 0o644  # sealed: as any file, under umask 022
    r = pouch("transcript", "verify", sealed, *cards)
    assert r.code == 11 and "not disclosed" in r.out.decode()
    # Against someone else's card.
    pouch("init", "--name", "Moon Jae-in", "--no-passphrase", "--home", tmp_path / "moon")
    pouch("card", "-o", tmp_path / "moon.card", "--home", tmp_path / "moon")
    r = pouch("transcript", "verify", bundle, "--card", tmp_path / "trump.card",
              "--card", tmp_path / "moon.card")  # fmt: skip
    assert r.code == 11 and "other parties" in r.out.decode()

    def rewritten(name: str, change: Any) -> Path:
        """The transcript with its manifest and containers changed."""
        with tarfile.open(bundle) as tar:
            members = {m.name: m for m in tar.getmembers()}
            m = transcript._manifest(tar, members)
            files = {e.letter: transcript._read(tar, members[e.member]) for e in m["letters"]}
        entries, files = change(m["letters"], files)
        out = tmp_path / name
        with open(out, "wb") as f:
            transcript.write(f, m["parties"], m["exported"], entries,
                             [io.BytesIO(files[e.letter]) for e in entries])  # fmt: skip
        return out

    # The last letter withheld: Kim's reply acknowledges it.
    last = rewritten("last-withheld.tar", lambda es, fs: (es[:-1], fs))
    r = pouch("transcript", "verify", last, *cards)
    assert r.code == 11 or "acknowledges" not in r.out.decode()
    # A letter listed twice.
    twice = rewritten("twice.tar", lambda es, fs: ([*es, es[0]], fs))
    r = pouch("transcript", "verify", twice, *cards)
    assert r.code == 11 and "lists a letter twice" in r.out.decode()
    # A letter withheld: the gap shows.
    second = rewritten("withheld.tar", lambda es, fs: (es[1:], fs))
    r = pouch("transcript", "verify", second, *cards)
    assert r.code == 11 and "letter #1 is not in the transcript" in r.out.decode()

    # One byte changed in a letter's ciphertext.
    def flip(es: list[Any], fs: dict[str, bytes]) -> tuple[list[Any], dict[str, bytes]]:
        data = bytearray(fs[es[0].letter])
        data[container_header_size() + 300] ^= 1
        return es, {**fs, es[0].letter: bytes(data)}

    r = pouch("transcript", "verify", rewritten("flipped.tar", flip), *cards)
    assert r.code == 11 and f"letter {cancel[:12]}" in r.out.decode()

    # A disclosed key that is not the letter's.
    def wrong_key(es: list[Any], fs: dict[str, bytes]) -> tuple[list[Any], dict[str, bytes]]:
        from dataclasses import replace

        return [replace(es[0], file_key=bytes(16)), *es[1:]], fs

    r = pouch("transcript", "verify", rewritten("wrongkey.tar", wrong_key), *cards)
    assert r.code == 11 and "header MAC" in r.out.decode()
    # Not a transcript at all.
    (tmp_path / "junk.tar").write_bytes(b"junk" * 300)
    r = pouch("transcript", "verify", tmp_path / "junk.tar", *cards)
    assert r.code == 11 and "not a pouch transcript" in r.err


def container_header_size() -> int:
    from pouch import container

    return container.HEADER.size


def test_a_forked_letter_is_refused_every_time(desks: dict[str, Path], tmp_path: Path) -> None:
    _seal(desks["trump"], "Kim Jong-un", tmp_path / "l1.pouch", "Letter 1")
    clone = tmp_path / "clone"
    shutil.copytree(desks["trump"], clone)
    _seal(desks["trump"], "Kim Jong-un", tmp_path / "a.pouch", "The real #2")
    _seal(clone, "Kim Jong-un", tmp_path / "b.pouch", "Another #2")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("l1.pouch", "a.pouch"):
        assert pouch("open", tmp_path / name, "-o", inbox, "--home", desks["kim"]).code == 0
    before = sorted(p.name for p in inbox.iterdir())
    for _ in range(2):
        r = pouch("open", tmp_path / "b.pouch", "-o", inbox, "--home", desks["kim"])
        assert r.code == 14 and "FORK" in r.err, r.err
        assert sorted(p.name for p in inbox.iterdir()) == before


def test_a_huge_sequence_number_costs_nothing(desks: dict[str, Path], tmp_path: Path) -> None:
    """A letter claiming #10**12 is a gap of a trillion letters, reported as
    one range, in no time and no memory."""
    import io

    from pouch import letter
    from pouch.home import Home
    from pouch.letter.order import Block

    trump = Home(desks["trump"]).unlock(lambda: b"")
    kim = Home(desks["kim"]).card()
    out = io.BytesIO()
    letter.seal(trump, [kim], io.BytesIO(b"far ahead"), out, stream="7" * 32,
                 order={kim.fingerprint: Block(10**12, "0" * 64, None, None)})  # fmt: skip
    (tmp_path / "far.pouch").write_bytes(out.getvalue())
    code, got, err = _open(desks["kim"], tmp_path / "far.pouch")
    assert code == 0 and got["order"]["arrival"] == "gap", err
    assert got["order"]["notes"] == [
        f"letters #1 to #{10**12 - 1} from Donald J. Trump have not arrived; #{10**12} refers to it"
    ]
    assert len(got["order"]["missing"]) == 1000
    ledger = _letters(desks["kim"])
    assert len(ledger["missing"]) == 1000
    assert pouch("db", "check", "--home", desks["kim"]).code == 0


def test_order_blocks_all_have_one_size(desks: dict[str, Path], tmp_path: Path) -> None:
    """A co-recipient sees only the blocks' lengths: they must say nothing."""
    from pouch.home import Home
    from pouch.letter import open_letter

    trump, kim = desks["trump"], desks["kim"]
    sizes = set()
    for i in (1, 2):
        _seal(trump, "Kim Jong-un", tmp_path / f"l{i}.pouch", f"Letter {i}")
        assert _open(kim, tmp_path / f"l{i}.pouch")[0] == 0
        _seal(kim, "Donald J. Trump", tmp_path / f"k{i}.pouch", f"Answer {i}")
        assert _open(trump, tmp_path / f"k{i}.pouch")[0] == 0
    me = Home(kim).unlock(lambda: b"")
    for name in ("l1", "l2"):
        opened = open_letter(me, tmp_path / f"{name}.pouch", lambda part: None)
        sizes |= {len(b) for b in opened.header.blocks.values()}
        assert opened.order is not None
    assert sizes == {560}


def test_re_runs_complete_what_a_kill_left(desks: dict[str, Path], tmp_path: Path) -> None:
    """A receipt killed after it was committed, and an open killed while
    naming its parts: the same command, run again, finishes each once."""
    import os
    import subprocess

    from .conftest import POUCH

    trump, kim = desks["trump"], desks["kim"]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, step in enumerate(("open:named", "seal:committed")):
        _seal(trump, "Kim Jong-un", tmp_path / f"l{i}.pouch", f"Letter {i}")
        args = [str(POUCH), "open", str(tmp_path / f"l{i}.pouch"), "-o", str(inbox),
                "--home", str(kim)]  # fmt: skip
        args += ["--receipt", str(tmp_path / "r.pouch")] if i else []
        env = {**os.environ, "POUCH_TEST_KILL_AT": step}
        assert subprocess.run(args, env=env, capture_output=True).returncode == -9
        r = pouch(*args[1:])
        assert r.code == 0, (step, r.err)
    sent = [x for x in _letters(kim)["letters"] if x["direction"] == "sent"]
    assert [(x["kind"], x["seq"], x["written"]) for x in sent] == [("receipt", 1, True)]
    assert (tmp_path / "r.pouch").exists()
    assert pouch("db", "check", "--home", kim).code == 0
