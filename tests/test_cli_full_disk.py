"""A file system that takes no more: full, read-only, or a file past the
process's size limit. Every command that writes says which file it could
not write (exit 9), and leaves nothing behind.

The full and read-only file systems are real: a small tmpfs mounted for
each test, which needs root (make test runs as root in CI). Where it cannot
be mounted, those tests say so and are skipped; the size-limit tests run
everywhere."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import pouch

SECRET = {"POUCH_PASSPHRASE": "a passphrase for tests"}
BODY = b"Dear Chairman,\nthe menu for Singapore follows.\n"


def _mount(where: Path, options: str) -> None:
    where.mkdir(exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(
            f"a small tmpfs cannot be mounted here (root is needed): {r.stderr.decode().strip()}"
        )


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mounts a tmpfs of size bytes (read-only, holding files, if asked)."""
    mounted: list[Path] = []

    def mount(size: int, read_only_with: dict[str, bytes] | None = None) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        _mount(where, f"size={size},mode=0777")
        mounted.append(where)
        if read_only_with is not None:
            for name, data in read_only_with.items():
                (where / name).write_bytes(data)
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(where: Path, leave: int) -> None:
    """Fill the file system at where until about leave bytes are free."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    with open(where / "filler", "ab") as f:
        f.write(b"\0" * max(0, free - leave))


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    h = {"kim": tmp_path / "kim", "trump": tmp_path / "trump"}
    for name, full in (("kim", "Kim Jong-un"), ("trump", "Donald Trump")):
        assert pouch("init", "--name", full, "--home", h[name], env=SECRET).code == 0
        pouch("card", "-o", tmp_path / f"{name}.card", "--home", h[name])
    for me, other in (("kim", "trump"), ("trump", "kim")):
        r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified", "--home", h[me])
        assert r.code == 0, r.err
    return h


def _letter(homes: dict[str, Path], tmp_path: Path, size: int = 0) -> Path:
    out = tmp_path / f"letter{size}.pouch"
    args = ["-A", tmp_path / "annex.bin"] if size else []
    if size:
        (tmp_path / "annex.bin").write_bytes(os.urandom(size))
    r = pouch("seal", "-t", "Kim Jong-un", *args, "-o", out, "--home", homes["trump"],
              input=BODY, env=SECRET)  # fmt: skip
    assert r.code == 0, r.err
    return out


def _refused(r: object, path: Path, reason: str) -> None:
    code, err = r.code, r.err  # type: ignore[attr-defined]
    assert code == 9, err
    assert f"error: cannot write {path}: {reason}; nothing was written" in err, err
    assert "internal error" not in err


def test_a_full_disk(disk: Callable[..., Path], homes: dict[str, Path], tmp_path: Path) -> None:
    small = disk(1 << 20)
    annex = tmp_path / "annex.bin"
    annex.write_bytes(os.urandom(3 << 20))
    full = "No space left on device"

    # seal: the output is named; the home's register kept no letter.
    r = pouch("seal", "-t", "Kim Jong-un", "-A", annex, "-o", small / "l.pouch",
              "--home", homes["trump"], input=BODY, env=SECRET)  # fmt: skip
    _refused(r, small / "l.pouch", full)
    assert "free some space there" in r.err
    ledger = json.loads(pouch("letters", "--json", "--home", homes["trump"], env=SECRET).out)
    assert ledger["letters"] == []

    # open into a folder on the full disk: the folder is named, left empty.
    letter = _letter(homes, tmp_path, 3 << 20)
    (small / "in").mkdir()
    r = pouch("open", letter, "-o", small / "in", "--home", homes["kim"], env=SECRET)
    _refused(r, small / "in", full)
    assert list((small / "in").iterdir()) == []

    # pouch age, both ways.
    key = tmp_path / "key.txt"
    assert pouch("age-keygen", "-o", key).code == 0
    recipient = next(w for w in key.read_text().split() if w.startswith("age1"))
    _refused(pouch("age", "-r", recipient, "-o", small / "x.age", annex), small / "x.age", full)
    assert pouch("age", "-r", recipient, "-o", tmp_path / "x.age", annex).code == 0
    r = pouch("age", "-d", "-i", key, "-o", small / "x.bin", tmp_path / "x.age")
    _refused(r, small / "x.bin", full)
    assert sorted(p.name for p in small.iterdir()) == ["in"]

    # print and scan: the disk nearly full, the page does not fit.
    small_letter = _letter(homes, tmp_path)
    assert pouch("print", small_letter, "-o", tmp_path / "page.pdf").code == 0
    _fill(small, 16 << 10)
    _refused(pouch("print", small_letter, "-o", small / "p.pdf"), small / "p.pdf", full)
    _fill(small, 0)
    r = pouch("scan", tmp_path / "page.pdf", "-o", small / "s.pouch")
    _refused(r, small / "s.pouch", full)
    assert sorted(p.name for p in small.iterdir()) == ["filler", "in"]


def test_a_full_archive_is_named_not_the_output(homes: dict[str, Path], tmp_path: Path) -> None:
    """The archive keeps its own copy: where it has no room, the message
    names the archive (not the output, which had room), and nothing is
    kept, named or recorded."""
    letter = _letter(homes, tmp_path, 3 << 20)
    archive = homes["kim"] / "archive"
    archive.mkdir(exist_ok=True)
    # ext4, where the archive's copy is written past the page cache
    # (O_DIRECT): a tmpfs would take the kernel's copy instead.
    image, disk_at = tmp_path / "ext4.img", tmp_path / "ext4"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    disk_at.mkdir()
    if subprocess.run(["mount", "-o", "loop", str(image), str(disk_at)]).returncode != 0:
        pytest.skip("an ext4 image cannot be mounted here (root and a loop device are needed)")
    _fill(disk_at, 1 << 20)
    subprocess.run(["mount", "--bind", str(disk_at), str(archive)], check=True)
    try:
        r = pouch("open", letter, "-o", tmp_path / "in", "--home", homes["kim"], env=SECRET)
        assert r.code == 9, r.err
        assert f"error: cannot keep the letter in {archive}/" in r.err, r.err
        assert "No space left on device" in r.err and "free some space there" in r.err
        assert f"cannot write {tmp_path / 'in'}" not in r.err
        assert "internal error" not in r.err
        assert sorted(p.name for p in archive.iterdir()) == ["filler", "lost+found"]
        assert not (tmp_path / "in").exists() or list((tmp_path / "in").iterdir()) == []
        ledger = json.loads(pouch("letters", "--json", "--home", homes["kim"], env=SECRET).out)
        assert ledger["letters"] == []
        # The sender's side: its archive full, nothing sealed.
        mine = homes["trump"] / "archive"
        subprocess.run(["mount", "--bind", str(disk_at), str(mine)], check=True)
        try:
            r = pouch("seal", "-t", "Kim Jong-un", "-A", tmp_path / "annex.bin", "-o",
                      tmp_path / "l2.pouch", "--home", homes["trump"], input=BODY,
                      env=SECRET)  # fmt: skip
            assert r.code == 9, r.err
            assert "cannot keep the letter in" in r.err and "nothing was sent" in r.err
            assert "internal error" not in r.err
            assert not (tmp_path / "l2.pouch").exists()
        finally:
            subprocess.run(["umount", "-l", str(mine)], check=False)
    finally:
        for where in (archive, disk_at):
            subprocess.run(["umount", "-l", str(where)], check=False)
    # With room again, the same letter opens.
    r = pouch("open", letter, "-o", tmp_path / "in2", "--home", homes["kim"], env=SECRET)
    assert r.code == 0, r.err
    assert pouch("db", "check", "--home", homes["kim"], env=SECRET).code == 0


def test_a_read_only_disk(
    disk: Callable[..., Path], homes: dict[str, Path], tmp_path: Path
) -> None:
    letter = _letter(homes, tmp_path)
    r = pouch("handover", letter, "--to", tmp_path / "kim.card", "--home", homes["trump"],
              env=SECRET)  # fmt: skip
    assert r.code == 0, r.err
    ro = disk(1 << 20, read_only_with={"l.pouch": letter.read_bytes()})
    only = "Read-only file system"

    r = pouch("seal", "-t", "Kim Jong-un", "-o", ro / "new.pouch", "--home", homes["trump"],
              input=BODY, env=SECRET)  # fmt: skip
    _refused(r, ro / "new.pouch", only)
    assert "that file system is read-only: write elsewhere" in r.err
    _refused(pouch("open", letter, "-o", ro, "--home", homes["kim"], env=SECRET), ro, only)
    _refused(pouch("age", "-p", "-o", ro / "x.age", letter, env=SECRET), ro / "x.age", only)
    _refused(pouch("print", letter, "-o", ro / "p.pdf"), ro / "p.pdf", only)
    assert pouch("print", letter, "-o", tmp_path / "p.pdf").code == 0
    _refused(pouch("scan", tmp_path / "p.pdf", "-o", ro / "s.pouch"), ro / "s.pouch", only)

    # accept appends to the pouch where it is: on a read-only stick, it
    # cannot, and says so before countersigning anything.
    r = pouch("accept", ro / "l.pouch", "--home", homes["kim"], env=SECRET)
    assert r.code == 9, r.err
    assert f"cannot open {ro / 'l.pouch'}: {only}; nothing was appended" in r.err
    assert sorted(p.name for p in ro.iterdir()) == ["l.pouch"]
    assert (ro / "l.pouch").read_bytes() == letter.read_bytes()


def _file_size_limit(limit: int) -> Callable[[], None]:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def test_a_file_too_large_to_append_to(homes: dict[str, Path], tmp_path: Path) -> None:
    """The process may not make the pouch any larger (EFBIG, as on FAT at
    4 GiB): accept appends nothing, not even a part of its record."""
    letter = _letter(homes, tmp_path)
    r = pouch("handover", letter, "--to", tmp_path / "kim.card", "--home", homes["trump"],
              env=SECRET)  # fmt: skip
    assert r.code == 0, r.err
    before = letter.read_bytes()
    r = pouch("accept", letter, "--home", homes["kim"], env=SECRET,
              preexec=_file_size_limit(len(before) + 10))  # fmt: skip
    assert r.code == 9, r.err
    assert f"cannot append to {letter}: File too large; nothing was appended" in r.err
    assert letter.read_bytes() == before
    r = pouch("accept", letter, "--home", homes["kim"], env=SECRET)
    assert r.code == 0, r.err


@pytest.mark.parametrize("raised", ["os", "worker"])
def test_an_exhausted_quota_names_the_file(tmp_path: Path, raised: str) -> None:
    """EDQUOT, as a file system with quotas says it (this kernel's tmpfs has
    no quotas to exhaust): raised by a write here, or reported by a worker
    process as a FileError with its errno, it names the file being written."""
    import errno

    from pouch._io import writing
    from pouch.errors import FileError

    target = tmp_path / "out.pouch"
    error: Exception = (
        OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        if raised == "os"
        else FileError("I/O error: Disk quota exceeded", errno=errno.EDQUOT)
    )
    with pytest.raises(FileError) as e, writing(target):
        raise error
    assert e.value.message == f"cannot write {target}: Disk quota exceeded; nothing was written"
    assert e.value.hints == (
        "your disk quota there is used up: free some space, or write elsewhere",
    )
    assert e.value.exit_code == 9
    # Anything else passes through as it was.
    with pytest.raises(OSError, match="Permission"), writing(target):
        raise PermissionError(errno.EACCES, "Permission denied")
