"""The archive keeps its own bytes (SPEC.md 5.2): whatever a user does to
the file pouch sealed, or the file they opened (shred, truncate, an edit
in place, delete), the register's copy stays whole; a damaged archived
copy is named by db check, and an intact copy of the letter repairs it.

Everything runs through the CLI, with the stock tools a user would reach
for (shred, truncate), on the same file system as the homes: where a hard
link could be made."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import POUCH, pouch
from .test_cli_ledger import _open, _seal


def _shred(p: Path) -> None:
    subprocess.run(["shred", "-n", "1", str(p)], check=True)


def _truncate(p: Path) -> None:
    subprocess.run(["truncate", "-s", "100", str(p)], check=True)


def _edit_in_place(p: Path) -> None:
    with open(p, "r+b") as f:  # as an editor that writes back into the file would
        f.seek(200)
        f.write(b"X" * 64)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "shred": _shred,
    "truncate": _truncate,
    "edit in place": _edit_in_place,
    "delete": Path.unlink,
}


def _clean(home: Path, tmp_path: Path, name: str) -> None:
    r = pouch("db", "check", "--home", home)
    assert r.code == 0, r.out.decode()
    out = tmp_path / f"transcript-{home.name}.tar"
    out.unlink(missing_ok=True)
    r = pouch("transcript", "export", name, "-o", out, "--home", home)
    assert r.code == 0, r.err
    out.unlink()
    r = pouch("transcript", "export", name, "-o", out, "--decrypted", "--home", home)
    assert r.code == 0, r.err


def _archived(home: Path) -> list[Path]:
    return sorted((home / "archive").iterdir())


@pytest.mark.parametrize("damage", DAMAGE)
def test_what_is_done_to_a_sealed_output_or_an_opened_input_leaves_the_archive_whole(
    desks: dict[str, Path],
    tmp_path: Path,
    damage: str,
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    letter = tmp_path / "l1.pouch"
    _seal(trump, "Kim Jong-un", letter, "Letter 1")
    code, _, err = _open(kim, letter)
    assert code == 0, err
    # Copies, not links: each archive's file has its own inode.
    for home in (trump, kim):
        (kept,) = _archived(home)
        assert kept.stat().st_nlink == 1 and kept.stat().st_ino != letter.stat().st_ino
        assert kept.read_bytes() == letter.read_bytes()
    DAMAGE[damage](letter)  # the sender's output and the recipient's input, both
    _clean(trump, tmp_path, "Kim Jong-un")
    _clean(kim, tmp_path, "Donald J. Trump")


def test_a_damaged_archive_is_named_and_repaired_by_an_intact_copy(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    letter = tmp_path / "l1.pouch"
    _seal(trump, "Kim Jong-un", letter, "Letter 1")
    assert _open(kim, letter)[0] == 0
    for home, other in ((trump, "Kim Jong-un"), (kim, "Donald J. Trump")):
        (kept,) = _archived(home)
        _shred(kept)
        r = pouch("db", "check", "--home", home)
        assert r.code == 9
        assert "its archived container is damaged" in r.out.decode()
        assert "open or accept an intact copy of the letter to repair it" in r.out.decode()
        r = pouch("transcript", "export", other, "-o", tmp_path / "t.tar", "--home", home)
        assert r.code == 9 and "is damaged or missing" in r.err
        assert "open or accept an intact copy" in r.err
        # Opening the intact copy again: a replay (the sender's own letter,
        # for Trump), which makes the archive whole.
        r = pouch("open", letter, "--home", home)
        assert r.code == 0, r.err
        assert "archived copy was damaged or missing: it is whole again" in r.err
        assert kept.read_bytes() == letter.read_bytes()
        _clean(home, tmp_path, other)
    # A missing one too, and an intact copy that is already kept is left alone.
    (kim / "archive" / _archived(kim)[0].name).unlink()
    r = pouch("db", "check", "--home", kim)
    assert r.code == 9 and "open or accept a copy of the letter to put it back" in r.out.decode()
    r = pouch("open", letter, "--home", kim)
    assert r.code == 0 and "whole again" in r.err
    r = pouch("open", letter, "--home", kim)
    assert r.code == 0 and "whole again" not in r.err
    _clean(kim, tmp_path, "Donald J. Trump")


def test_accepting_an_intact_copy_repairs_the_archive(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    trump, kim = desks["trump"], desks["kim"]
    letter = tmp_path / "l1.pouch"
    _seal(trump, "Kim Jong-un", letter, "Letter 1")
    carried = tmp_path / "carried.pouch"
    shutil.copyfile(letter, carried)
    assert _open(kim, letter)[0] == 0
    (kept,) = _archived(kim)
    _truncate(kept)
    assert pouch("db", "check", "--home", kim).code == 9
    r = pouch("handover", carried, "--to", "Kim Jong-un", "--home", trump)
    assert r.code == 0, r.err
    r = pouch("accept", carried, "--home", kim)
    assert r.code == 0, r.err
    assert "archived copy of this letter was damaged or missing: it is whole again" in r.err
    _clean(kim, tmp_path, "Donald J. Trump")
    assert os.path.getsize(kept) > 100


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a tmpfs at /dev/shm")
def test_a_copy_across_file_systems_is_made_by_hand(tmp_path: Path) -> None:
    """copy_file_range cannot copy from tmpfs to the disk (EXDEV): the
    bytes are read and written instead, the copy as whole and its own."""
    from pouch._io import copy_durably

    data = os.urandom(3 * (8 << 20) + 12345)  # several pieces and a part of one
    with open(f"/dev/shm/pouch-test-{os.getpid()}", "w+b") as src:
        try:
            src.write(data)
            src.flush()
            copy_durably(src, tmp_path / "kept")
            with pytest.raises(FileExistsError):
                copy_durably(src, tmp_path / "kept")
        finally:
            os.unlink(src.name)
    assert (tmp_path / "kept").read_bytes() == data
    assert (tmp_path / "kept").stat().st_mode & 0o777 == 0o600


def test_an_output_a_crash_left_empty_is_refused_then_written_out_again(
    desks: dict[str, Path], tmp_path: Path
) -> None:
    """The sealed output is not fsynced (the archive is): a machine that
    lost power after pouch named it can leave it empty. The same command
    run again refuses that file, and once it is moved away writes the
    letter out from the archive."""
    trump, kim = desks["trump"], desks["kim"]
    letter, body = tmp_path / "l1.pouch", tmp_path / "l1.txt"
    body.write_text("Letter 1")
    args = ["seal", "-t", "Kim Jong-un", "-o", letter, body, "--home", trump]
    killed = subprocess.run(
        [str(POUCH), *map(str, args)],
        env={**os.environ, "POUCH_TEST_KILL_AT": "seal:named"},
        capture_output=True,
    )
    assert killed.returncode == -9 and letter.exists()
    letter.write_bytes(b"")  # what the disk kept of it
    r = pouch(*args)
    assert r.code == 10 and "is not the letter this command sealed before" in r.err
    assert "move it away and run the command again" in r.err
    letter.unlink()
    r = pouch(*args)
    assert r.code == 0, r.err
    assert _open(kim, letter)[0] == 0
    _clean(trump, tmp_path, "Kim Jong-un")


def test_a_copy_that_is_not_what_was_verified_is_not_kept(tmp_path: Path) -> None:
    """copy_durably hashes what it copies: bytes other than the ones
    expected (a file changed after it was verified) are never named."""
    import blake3

    from pouch._io import Expect, copy_durably
    from pouch.errors import FileError

    data = os.urandom(3 << 20)
    src = tmp_path / "src"
    src.write_bytes(data)
    good = Expect(100, len(data) - 200, blake3.blake3(data[100:-100]).hexdigest())
    with open(src, "rb") as f:
        copy_durably(f, tmp_path / "kept", expect=good)
        with pytest.raises(FileError, match="changed while it was being kept"):
            copy_durably(f, tmp_path / "other", expect=good._replace(digest="00" * 32))
    assert (tmp_path / "kept").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "src"]


def test_a_torn_last_record_is_not_archived(desks: dict[str, Path], tmp_path: Path) -> None:
    """A pouch whose last custody record was cut short (a crash while it
    was appended) is kept without it: the archived copy is whole."""
    trump, kim = desks["trump"], desks["kim"]
    letter = tmp_path / "l1.pouch"
    _seal(trump, "Kim Jong-un", letter, "Letter 1")
    whole = letter.read_bytes()
    with open(letter, "ab") as f:
        f.write(b"\x00\x00\x01\x00\x01torn")  # a record head promising more
    assert _open(kim, letter)[0] == 0
    (kept,) = _archived(kim)
    assert kept.read_bytes() == whole
    _clean(kim, tmp_path, "Donald J. Trump")
