"""File plumbing shared by every layer: exact reads and atomic output.

SPEC.md section 0 (Output): a file pouch writes is written under a temporary
name (or none) and named only once everything verified; on failure nothing
partial is left behind. atomic_output and StagedFile are the one place that
rule is implemented.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
import io
import mmap
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from .errors import FileError, PouchError, RefusedError


@contextlib.contextmanager
def io_errors() -> Iterator[None]:
    """A failed read or write is a FileError, the user's to act on (a full
    disk, a removed USB stick), not a bug. A broken pipe passes: the CLI
    ends quietly when its reader goes away."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise io_error(e) from None


def io_error(e: OSError) -> FileError:
    """The FileError for e, which keeps its errno for writing() to see."""
    return FileError(f"I/O error: {e.strerror}", errno=e.errno)


# What a file system says when it takes no more: full, over quota, a file
# too large for it (FAT: 4 GiB) or for the process's limit, read-only.
_NO_ROOM = {
    errno.ENOSPC: "free some space there, or write elsewhere",
    errno.EDQUOT: "your disk quota there is used up: free some space, or write elsewhere",
    errno.EFBIG: "the file is too large for that file system (FAT holds at most 4 GiB): "
    "write elsewhere",
    errno.EROFS: "that file system is read-only: write elsewhere",
}


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """A file system that takes no more, met anywhere in the block (in a
    buffer's flush, in a worker process), is reported as writing path:
    the one place that knows which file it was. The block's own cleanup
    leaves nothing behind (SPEC.md section 0, Output), and the message
    says so."""
    try:
        yield
    except (OSError, FileError) as e:
        if e.errno not in _NO_ROOM:
            raise
        raise _no_room(path, e.errno) from None


def _no_room(path: str | os.PathLike[str], code: int) -> FileError:
    return FileError(
        f"cannot write {os.fspath(path)}: {os.strerror(code)}; nothing was written",
        *room_hint(code),
        errno=code,
    )


def room_hint(code: int | None) -> tuple[str, ...]:
    """What to do when the file system gave error code, if it said it takes
    no more."""
    return (_NO_ROOM[code],) if code in _NO_ROOM else ()


def read_full(src: BinaryIO, n: int) -> bytes:
    """Read n bytes, or fewer only at the end of the stream."""
    parts: list[bytes] = []
    while n > 0:
        b = src.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


class PieceReader(io.RawIOBase):
    """A reader over pieces produced one at a time: decrypted chunks, decoded
    armor lines.

    Subclasses implement _next(), which returns the next piece (b"" is
    allowed), sets self._done after the last one, and may set self._error:
    an error found after a piece that is itself good, raised on the next read
    once that piece is consumed. An error is sticky: every later read raises
    it again.
    """

    def __init__(self) -> None:
        super().__init__()
        self._piece = memoryview(b"")
        self._done = False
        self._error: PouchError | None = None

    def _next(self) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._piece:
            if self._error is not None:
                raise self._error
            if self._done:
                return 0
            try:
                self._piece = memoryview(self._next())
            except PouchError as e:
                self._error = e
                raise
        n = min(len(b), len(self._piece))
        b[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n


def read_small(
    path: str | os.PathLike[str], limit: int, what: str, error: type[PouchError] = FileError
) -> bytes:
    """The whole of a file that must be small (a key, a card): a FileError
    if it cannot be read, error if it is larger than limit bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise FileError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > limit:
        raise error(f"{path}: the file is too large for {what}")
    return data


def _umask() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _open_unnamed(directory: Path) -> tuple[int, Path | None]:
    """An unnamed file in directory (O_TMPFILE), or a hidden named one where
    the file system cannot do that. Returns the fd and the name, if any."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile and Path("/proc/self/fd").is_dir():
        try:
            return os.open(directory, tmpfile | os.O_RDWR, 0o600), None
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    for _ in range(100):
        name = directory / f".pouch-{secrets.token_hex(6)}.tmp"
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(directory))


def _link_unnamed(fd: int, name: Path) -> None:
    """Give the file open at fd (an O_TMPFILE file, or any other) a name.

    CPython calls linkat(..., AT_SYMLINK_FOLLOW), which resolves the /proc
    link to the open file, only when a directory fd is passed; plain link()
    would try to hard-link the /proc symlink itself and fail with EXDEV.
    """
    dir_fd = os.open(name.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", name.name, dst_dir_fd=dir_fd, follow_symlinks=True)
    finally:
        os.close(dir_fd)


class StagedFile:
    """A file written unnamed in a directory, published under a name only
    once complete (see atomic_output). Several can be staged and published
    together: the attachments of one letter."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        fd, self._tmp_name = _open_unnamed(directory)
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        self.published = False

    def publish(self, path: Path, mode: int, replace: bool = True) -> None:
        """Name the file path (raises FileExistsError if it exists and
        replace is false)."""
        fd = self.file.fileno()
        self.file.flush()
        os.fchmod(fd, mode)
        if self._tmp_name is None:
            # A new path gets its name in one step; an existing one is
            # replaced through a named temporary (link cannot overwrite).
            try:
                _link_unnamed(fd, path)
                self.published = True
                return
            except FileExistsError:
                if not replace:
                    raise
            self._tmp_name = self.directory / f".pouch-{secrets.token_hex(6)}.tmp"
            _link_unnamed(fd, self._tmp_name)
        if replace:
            os.replace(self._tmp_name, path)
        else:
            os.link(self._tmp_name, path)
            os.unlink(self._tmp_name)
        self._tmp_name = None
        self.published = True

    def keep(self, path: Path) -> None:
        """Copy the staged file to path, durably (the register's archive
        keeps each letter). It stays staged, and is not itself fsynced:
        what the archive holds durably can be written out again."""
        self.file.flush()
        copy_durably(self.file, path)

    def close(self) -> None:
        """Close; an unpublished file is gone. Closing flushes what is
        buffered: for a file nobody will see, a full disk then is no error
        (the error that stopped the writing is the one to report)."""
        try:
            self.file.close()
        except OSError:
            if self.published:
                raise
        if self._tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp_name)
            self._tmp_name = None


def publish(staged: StagedFile, path: Path, mode: int | None = None, replace: bool = False) -> None:
    """Name a staged file path (mode: new_file_mode(path) by default). An
    existing path is refused (RefusedError) unless replace."""
    try:
        staged.publish(path, new_file_mode(path) if mode is None else mode, replace)
    except FileExistsError:
        raise RefusedError(f"{path} already exists", "pouch does not overwrite it") from None
    except OSError as e:
        raise FileError(f"cannot write {path}: {e.strerror}", errno=e.errno) from None


def publish_all(
    files: Sequence[tuple[StagedFile, Path]], replace: bool = False, mode: int | None = None
) -> None:
    """Publish every staged file (given mode, by default new_file_mode's),
    all or none: if one cannot be named, the names already given are taken
    back (a file that was replaced stays replaced)."""
    existed = {path for _, path in files if os.path.lexists(path)}
    named: list[Path] = []
    for staged, path in files:
        try:
            publish(staged, path, mode, replace)
        except PouchError as e:
            for done in named:
                if done not in existed:
                    done.unlink(missing_ok=True)
            if isinstance(e, FileError):
                raise FileError(f"{e.message}; nothing was kept") from None
            raise
        named.append(path)


def new_file_mode(path: Path) -> int:
    """The mode a file written at path gets: the existing file's, or 0o666
    less the umask, as for any file a program creates."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: int | None = None, replace: bool = True
) -> Iterator[BinaryIO]:
    """Yield a file that becomes path only if the block completes.

    The data is written to an unnamed file (O_TMPFILE) in path's directory,
    readable by its owner only while it is written, then given mode and
    linked in as path; if the block raises, or the process is killed, path is
    untouched and nothing is left behind. Two cases go through a hidden
    named temporary file, which a SIGKILL at the wrong moment can leave:
    replacing an existing file (for the instant between link and rename),
    and file systems without O_TMPFILE (FAT on a USB stick, NFS).

    mode defaults to new_file_mode(path). A symlink at path is followed: its
    target is replaced, as a program writing through it would. With replace
    false, an existing path is refused (RefusedError) and left alone.
    """
    path = Path(os.path.realpath(path))
    if mode is None:
        mode = new_file_mode(path)
    with writing(path):
        try:
            staged = StagedFile(path.parent)
        except OSError as e:
            raise FileError(f"cannot write {path}: {e.strerror}", errno=e.errno) from None
        try:
            yield staged.file
            publish(staged, path, mode, replace)
        finally:
            staged.close()


class Expect(NamedTuple):
    """What a copy must hold: BLAKE3 of its bytes [offset, offset + length)
    is digest (hex). For the archive, the age ciphertext's envelope id."""

    offset: int
    length: int
    digest: str


def copy_durably(
    src: BinaryIO,
    path: Path,
    replace: bool = False,
    length: int | None = None,
    expect: Expect | None = None,
) -> None:
    """A copy of src's first length bytes (default: all) at path, with bytes
    of its own, fsynced before it is named (0600); FileExistsError if path
    exists and not replace. With expect, the bytes copied are hashed on the
    way and the copy is named only if they are the ones expected: a file
    changed after it was verified is not kept.

    The archive is made of these (SPEC.md 5.2): nothing done to the file a
    user handed pouch or received from it (shred, truncate, an edit in
    place) may reach what the register keeps, so never a hard link. Where
    the file system shares blocks copy-on-write (Btrfs, XFS), and nothing
    is to be hashed, the copy is a clone and costs nothing; else it is
    written past the page cache (_copy_direct), or failing that copied by
    the kernel (copy_file_range), its write-back started as it goes so
    that the fsync at the end waits for little.
    """
    size = os.fstat(src.fileno()).st_size if length is None else length
    staged = StagedFile(path.parent)
    try:
        dst = staged.file.fileno()
        hasher = _Hasher(expect) if expect is not None else None
        _copy(src.fileno(), dst, size, hasher)
        os.fsync(dst)
        if hasher is not None and not hasher.matches():
            raise FileError(
                "the file changed while it was being kept in the archive; nothing was kept",
                "leave the file as it is, and run the command again",
            )
        staged.publish(path, 0o600, replace=replace)
    finally:
        staged.close()
    fsync_directory(path.parent)


class _Hasher:
    """BLAKE3 of the expected range of the bytes that go by, in order."""

    def __init__(self, expect: Expect) -> None:
        import blake3

        self._expect = expect
        self._h = blake3.blake3()

    def update(self, offset: int, data: memoryview) -> None:
        lo = max(self._expect.offset, offset)
        hi = min(self._expect.offset + self._expect.length, offset + len(data))
        if lo < hi:
            self._h.update(data[lo - offset : hi - offset])

    def matches(self) -> bool:
        return hmac.compare_digest(self._h.hexdigest(), self._expect.digest)


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_COPY_PIECE = 8 << 20
# copy_file_range cannot copy between these two files (another file
# system, an old kernel, a special file): read and write instead.
_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


def _copy(src: int, dst: int, size: int, hasher: _Hasher | None) -> None:
    if hasher is None and size == os.fstat(src).st_size:
        try:
            fcntl.ioctl(dst, _FICLONE, src)
            return
        except OSError:
            pass  # not a file system that clones, or not within one
    if _copy_direct(src, dst, size, hasher):
        return
    os.ftruncate(dst, 0)  # whatever a refused direct write left
    if hasher is not None:
        _copy_by_hand(src, dst, size, hasher)
        return
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src, dst, min(_COPY_PIECE, size - done), done, done)
        except OSError as e:
            if e.errno not in _NO_COPY_RANGE or done:
                raise
            _copy_by_hand(src, dst, size, None)
            return
        if n == 0:
            raise FileError("the file shrank while it was being copied")
        start_writeback(dst, done, n)
        done += n


# O_DIRECT takes whole blocks at aligned offsets, from aligned memory: 4096
# bytes is the largest logical block size Linux disks have.
_DIRECT_ALIGN = 4096
_DIRECT_PIECE = 1 << 20


def _copy_direct(src: int, dst: int, size: int, hasher: _Hasher | None) -> bool:
    """Copy size bytes of src into dst past the page cache (O_DIRECT);
    False where the file system does not take that (the caller truncates
    what a refused write may have left).

    The archive's copy is read by nobody soon, and must reach the disk
    before the letter is committed anyway: written from small buffers
    straight to the disk, it costs no page cache (on a virtual machine
    that hands freed memory back to its host, new page cache is slow to
    touch: a 512 MiB copy through it took 0.4 s or 4 to 8 s, run to run,
    on this project's VM on 2026-12-03) and leaves the final fsync little
    to wait for. The last block is written whole, zero-padded, and the
    file cut back to its size.
    """
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        # A new open file description of the same (unnamed) file.
        direct = os.open(f"/proc/self/fd/{dst}", os.O_WRONLY | flag)
    except OSError:
        return False
    # Two buffers: one is read into while a thread writes the other (both
    # calls release the GIL), so the disk is kept busy.
    from concurrent.futures import Future, ThreadPoolExecutor  # for this alone

    bufs = [mmap.mmap(-1, _DIRECT_PIECE) for _ in range(2)]  # page-aligned
    views = [memoryview(b) for b in bufs]
    writer = ThreadPoolExecutor(1)
    pending: Future[None] | None = None
    try:
        done = 0
        while done < size:
            view = views[(done // _DIRECT_PIECE) % 2]
            n = _read_at(src, view[: min(_DIRECT_PIECE, size - done)], done)
            if hasher is not None:
                hasher.update(done, view[:n])
            whole = -(-n // _DIRECT_ALIGN) * _DIRECT_ALIGN
            view[n:whole] = bytes(whole - n)
            if pending is not None:
                pending.result()
            pending = writer.submit(_write_at, direct, view[:whole], done)
            if not done:
                try:
                    pending.result()
                except OSError as e:
                    if e.errno == errno.EINVAL:
                        return False  # the file system refuses O_DIRECT writes
                    raise
            done += n
        if pending is not None:
            pending.result()
        os.ftruncate(direct, size)  # the last block's padding off
        return True
    finally:
        writer.shutdown(wait=True)
        for b in bufs:
            # An error on its way up holds views of the buffers in its
            # traceback: those are unmapped when it is gone.
            with contextlib.suppress(BufferError):
                b.close()
        os.close(direct)


def _read_at(fd: int, buf: memoryview, offset: int) -> int:
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n == 0:
            raise FileError("the file shrank while it was being copied")
        got += n
    return got


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data = data[n:]
        offset += n


def _copy_by_hand(src: int, dst: int, size: int, hasher: _Hasher | None) -> None:
    buf = memoryview(bytearray(_COPY_PIECE))
    done = 0
    while done < size:
        n = _read_at(src, buf[: min(_COPY_PIECE, size - done)], done)
        if hasher is not None:
            hasher.update(done, buf[:n])
        _write_at(dst, buf[:n], done)
        start_writeback(dst, done, n)
        done += n


_SYNC_FILE_RANGE_WRITE = 2
_libc: Any = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing these bytes of fd to disk now, without waiting
    (sync_file_range): the fsync that ends the file then waits for what
    is left, not for all of it. A hint; where Linux is not, nothing."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.sync_file_range.argtypes = [
                ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint,
            ]  # fmt: skip
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def fsync_directory(path: Path) -> None:
    """Make the names in a directory durable (after a link or a rename)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def crash_point(name: str) -> None:
    """Where the crash tests may kill pouch (SIGKILL, real and immediate)
    to land in a given step of a crash order, not only where a random
    timer falls: POUCH_TEST_KILL_AT=name. Nothing happens otherwise."""
    if os.environ.get("POUCH_TEST_KILL_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
