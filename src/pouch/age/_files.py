"""The age verbs between paths: encrypt_file and decrypt_file.

Output files appear only once complete (pouch._io.atomic_output); stdin,
stdout and devices are streamed. Between two regular files the payload is
sealed or opened on every core (_parallel.py), with the same bytes as on
one.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from .. import _cores
from .._io import atomic_output, io_errors
from ..errors import FileError
from . import _parallel
from ._core import Decryptor, Encryptor, Identity, Rand, Recipient, copy, dearmor, encrypt_stream
from ._stream import ENC_CHUNK_SIZE, NONCE_SIZE, chunk_count


def _open_input(path: str | os.PathLike[str] | None) -> BinaryIO:
    if path is None:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise FileError(f"cannot read {path}: {e.strerror}") from None


def _remaining(f: BinaryIO) -> int | None:
    """Bytes from f's position to its end if f is a regular file, else None."""
    try:
        st = os.fstat(f.fileno())
        return st.st_size - f.tell() if stat.S_ISREG(st.st_mode) else None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


@contextlib.contextmanager
def _output(path: str | os.PathLike[str] | None) -> Iterator[tuple[BinaryIO, bool]]:
    """The destination, and whether it is a new regular file.

    None is stdout. An existing path that is not a regular file (a device
    such as /dev/null, a FIFO) is written in place, as stdout is: only
    authenticated chunks reach it, but what reached it stays. Anything else
    becomes a new file atomically (a symlink's target is replaced).
    """
    if path is None:
        yield sys.stdout.buffer, False
        return
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    except OSError as e:
        raise FileError(f"cannot write {path}: {e.strerror}") from None
    if special:
        try:
            f = open(path, "wb")
        except OSError as e:
            raise FileError(f"cannot write {path}: {e.strerror}") from None
        with f:
            yield f, False
        return
    with atomic_output(path) as new:
        yield new, True


def encrypt_file(
    input: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    recipients: Sequence[Recipient],
    *,
    armor: bool = False,
    jobs: int | None = None,
    rand: Rand = os.urandom,
) -> None:
    """Encrypt the file at input (None: stdin) to output (None: stdout).

    An output file appears only once complete. From a regular file of at
    least 8 MiB to a regular file, unarmored, the payload is sealed by `jobs`
    processes (default: one per core), with the same bytes as on one. This
    forks: call it with jobs=1 from a program that runs threads.
    """
    jobs = jobs or _cores.default_jobs()
    src = _open_input(input)
    try:
        with io_errors():
            enc = Encryptor(recipients, rand=rand)
            with _output(output) as (dst, regular):
                size = _remaining(src)
                if (
                    regular
                    and not armor
                    and size is not None
                    and _cores.worth_it(chunk_count(size), jobs)
                ):
                    _encrypt_parallel(enc, src, size, dst, jobs)
                else:
                    encrypt_stream(enc, src, dst, armor)
    finally:
        if input is not None:
            src.close()


def _encrypt_parallel(enc: Encryptor, src: BinaryIO, size: int, dst: BinaryIO, jobs: int) -> None:
    aead = enc.start(dst)._aead
    dst.flush()
    offset = len(enc.header) + NONCE_SIZE
    src_fd, dst_fd = src.fileno(), dst.fileno()
    # pread offsets are absolute: the plaintext starts where src stands
    # (not at 0 for a redirected stdin that was partly read).
    start = src.tell()

    def work(first: int, end: int) -> None:
        _parallel.seal_range(aead, src_fd, start, size, dst_fd, offset, first, end)

    _cores.run(work, _cores.shares(chunk_count(size), jobs))


def decrypt_file(
    input: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    identities: Sequence[Identity],
    *,
    jobs: int | None = None,
) -> None:
    """Decrypt the file at input (None: stdin) to output (None: stdout).

    An output file appears only once every chunk, the final one included,
    has been authenticated; on any failure it does not appear at all. To
    stdout (or a device), authenticated chunks are written as they are
    verified, as age does, and an error after some of them is still an
    error. From a regular file of at least 8 MiB to a regular file, the
    payload is opened by `jobs` processes (default: one per core). This
    forks: call it with jobs=1 from a program that runs threads.
    """
    jobs = jobs or _cores.default_jobs()
    src = _open_input(input)
    try:
        with io_errors():
            stream, armored = dearmor(src)
            d = Decryptor(stream, identities)
            with _output(output) as (dst, regular):
                size = None if armored else _remaining(src)
                if (
                    regular
                    and size is not None
                    and _cores.worth_it(-(-size // ENC_CHUNK_SIZE), jobs)
                ):
                    _decrypt_parallel(d, src, size, dst, jobs)
                else:
                    copy(d.reader().read, dst.write)
                    dst.flush()
    finally:
        if input is not None:
            src.close()


def _decrypt_parallel(d: Decryptor, src: BinaryIO, size: int, dst: BinaryIO, jobs: int) -> None:
    aead = d._aead
    src_fd, dst_fd = src.fileno(), dst.fileno()
    offset = src.tell()

    def work(first: int, end: int) -> None:
        _parallel.open_range(aead, src_fd, offset, size, dst_fd, first, end)

    _cores.run(work, _cores.shares(-(-size // ENC_CHUNK_SIZE), jobs))
    if os.fstat(src_fd).st_size - offset != size:
        raise FileError("the input file changed while it was being decrypted")
