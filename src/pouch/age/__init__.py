"""age v1 file encryption, on pyca/cryptography (https://c2sp.org/age, v1.1.0).

The verbs:

- :func:`encrypt` / :func:`decrypt` stream between file objects in constant
  memory, armor included;
- :func:`encrypt_file` / :func:`decrypt_file` work between paths (None means
  stdin or stdout), write their output atomically, and seal or open the
  payload on every core when both ends are regular files;
- :class:`Encryptor` and :class:`Decryptor` split both directions in two
  phases: the header and payload nonce first, then the payload. A signed
  letter binds itself to both before its first byte is written.

Keys are :class:`X25519Recipient`/:class:`X25519Identity` (``age1…``),
:class:`HybridRecipient`/:class:`HybridIdentity` (post-quantum, ``age1pq1…``)
and :class:`ScryptRecipient`/:class:`ScryptIdentity` (a passphrase); parse
them with :func:`parse_recipient` and :func:`parse_identity` (pouch.age.keys).

Decryption never releases plaintext that has not been authenticated: the
streaming reader hands out a chunk only after its tag verified, and file
output is renamed into place only after the final chunk verified.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._io import atomic_output, read_full
from ..errors import (
    FileError,
    HeaderError,
    HeaderMacError,
    KeyFormatError,
    NoIdentityMatchError,
    UsageError,
)
from . import _parallel
from ._crypto import FILE_KEY_SIZE, hkdf_sha256
from ._format import Header, Stanza, mac_input, parse_header
from ._stream import (
    CHUNK_SIZE,
    ENC_CHUNK_SIZE,
    NONCE_SIZE,
    DecryptingReader,
    EncryptingWriter,
    chunk_count,
    payload_aead,
)
from .armor import PEEK_SIZE, ArmoredReader, ArmoredWriter, is_armored
from .keys import parse_identity, parse_recipient
from .pq import HybridIdentity, HybridRecipient
from .scrypt import ScryptIdentity, ScryptRecipient
from .x25519 import X25519Identity, X25519Recipient

__all__ = [
    "Decryptor",
    "DisclosedKey",
    "Encryptor",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "parse_identity",
    "parse_recipient",
]

Rand = Callable[[int], bytes]

HEADER_LABEL = b"header"


@runtime_checkable
class Recipient(Protocol):
    """Something a file key can be wrapped to."""

    # Recipients with different labels are never mixed in one file: a
    # passphrase stands alone, and post-quantum recipients are not mixed with
    # classic ones (the classic stanza would undo the protection).
    @property
    def labels(self) -> frozenset[str]: ...

    def wrap(self, file_key: bytes, rand: Rand = ...) -> list[Stanza]: ...


@runtime_checkable
class Identity(Protocol):
    """Something that may unwrap a file key from a header's stanzas."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key; None if no stanza is addressed to this identity.

        Raises HeaderError if a stanza of its own type is malformed.
        """
        ...


def _header_mac(file_key: bytes, data: bytes) -> hmac.HMAC:
    # HMAC key = HKDF-SHA-256(ikm = file key, salt = empty, info = "header")
    h = hmac.HMAC(hkdf_sha256(file_key, b"", HEADER_LABEL), hashes.SHA256())
    h.update(data)
    return h


def _check_mixing(recipients: Sequence[Recipient]) -> None:
    labels = {r.labels for r in recipients}
    if len(labels) <= 1:
        return
    if any(isinstance(r, ScryptRecipient) for r in recipients):
        raise UsageError("a passphrase can't be combined with other recipients")
    raise UsageError(
        "post-quantum and classic recipients can't be mixed in one file",
        "the classic recipients would undo the post-quantum protection",
        "encrypt to age1pq1… recipients only, or make two files",
    )


class Encryptor:
    """Phase one of encryption: the header and payload nonce, before any payload.

    An Encryptor seals exactly one payload: the file key is fresh per file
    and the nonce fixed, so a second payload would reuse STREAM nonces.
    """

    def __init__(self, recipients: Sequence[Recipient], *, rand: Rand = os.urandom) -> None:
        if not recipients:
            raise UsageError("no recipients to encrypt to")
        _check_mixing(recipients)
        file_key = rand(FILE_KEY_SIZE)
        stanzas = tuple(s for r in recipients for s in r.wrap(file_key, rand))
        mac = _header_mac(file_key, mac_input(stanzas)).finalize()
        self.header: bytes = Header(stanzas, mac).marshal()
        self.nonce: bytes = rand(NONCE_SIZE)
        self._aead = payload_aead(file_key, self.nonce)
        self._used = False

    def writer(self, dst: BinaryIO) -> EncryptingWriter:
        """Write header and nonce to dst; return the writer for the payload.

        Closing the returned writer seals the final chunk.
        """
        return EncryptingWriter(self.start(dst), dst)

    def start(self, dst: BinaryIO) -> ChaCha20Poly1305:
        """Write header and nonce to dst; return the payload's AEAD, for a
        caller that seals the chunks itself, out of order, on several cores
        (chunk i with _stream.chunk_nonce). The payload follows at once."""
        if self._used:
            raise RuntimeError("an Encryptor seals one payload only")
        self._used = True
        dst.write(self.header + self.nonce)
        return self._aead


def _open_file_key(stanzas: tuple[Stanza, ...], identities: Sequence[Identity]) -> bytes:
    # Spec: implementations "MUST reject headers where an scrypt stanza is
    # present alongside any other stanza".
    if len(stanzas) > 1 and any(s.type == "scrypt" for s in stanzas):
        raise HeaderError("malformed header: a scrypt stanza must be the only stanza")
    for identity in identities:
        file_key = identity.unwrap(stanzas)
        if file_key is not None:
            return file_key
    if identities and all(isinstance(i, ScryptIdentity) for i in identities):
        if any(s.type == "scrypt" for s in stanzas):
            raise NoIdentityMatchError("incorrect passphrase")
        raise NoIdentityMatchError(
            "the file is not encrypted with a passphrase",
            "give the identity it was encrypted to with -i/--identity",
        )
    if any(s.type == "scrypt" for s in stanzas):
        raise NoIdentityMatchError(
            "the file is encrypted with a passphrase, not to these identities",
            "run without -i/--identity to be asked for the passphrase",
        )
    raise NoIdentityMatchError(
        "no identity matched any of the file's recipients",
        "check that the file was encrypted to one of these identities",
    )


class _Prefixed(io.RawIOBase):
    """prefix, then the rest of src: puts back what was read to peek."""

    def __init__(self, prefix: bytes, src: BinaryIO) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._src.read(len(b))
        b[: len(data)] = data
        return len(data)


def dearmor(src: BinaryIO) -> tuple[BinaryIO, bool]:
    """src with its armor removed if it has one, and whether it had.

    Armor is recognised as age does: the PEM header after at most 1 KiB of
    whitespace. A seekable src is rewound after the peek; otherwise the
    peeked bytes are put back in front of it.
    """
    pos = src.tell() if src.seekable() else None
    prefix = read_full(src, PEEK_SIZE)
    if pos is not None:
        src.seek(pos)
        stream = src
    else:
        stream = io.BufferedReader(_Prefixed(prefix, src))
    if is_armored(prefix):
        return io.BufferedReader(ArmoredReader(stream)), True
    return stream, False


class Decryptor:
    """Phase one of decryption: the header read, its MAC checked, the nonce read.

    src must be unarmored (see :func:`dearmor`); it is left at the first
    payload byte. ``header`` holds the header's exact bytes and ``nonce`` the
    payload nonce, ``stanzas`` its recipient stanzas; :meth:`reader` gives the
    authenticated plaintext.
    """

    def __init__(self, src: BinaryIO, identities: Sequence[Identity]) -> None:
        parsed = parse_header(src)
        file_key = _open_file_key(parsed.stanzas, identities)
        mac = _header_mac(file_key, parsed.mac_input())
        try:
            mac.verify(parsed.mac)  # constant time
        except InvalidSignature:
            raise HeaderMacError(
                "header MAC mismatch: the file was altered", "do not trust its contents"
            ) from None
        self.header: bytes = parsed.marshal()
        self.stanzas: tuple[Stanza, ...] = parsed.stanzas
        self.nonce: bytes = read_full(src, NONCE_SIZE)
        if len(self.nonce) != NONCE_SIZE:
            raise HeaderError("file truncated: the payload nonce is missing")
        self._aead = payload_aead(file_key, self.nonce)
        self._src = src
        self._file_key = file_key

    def disclose(self) -> bytes:
        """The file key: whoever gets it can read this one file, and nothing
        else (a transcript discloses it so that a third party can verify a
        letter). With it as an identity (DisclosedKey), the header's MAC
        proves it is this file's key."""
        return self._file_key

    def reader(self) -> DecryptingReader:
        return DecryptingReader(self._aead, self._src)

    @property
    def payload_aead(self) -> ChaCha20Poly1305:
        """The payload's AEAD, for a caller that opens the chunks itself,
        out of order, on several cores (chunk i with _stream.chunk_nonce).
        Such a caller must check every chunk's tag, as open_chunk does."""
        return self._aead


class DisclosedKey:
    """A file key disclosed by a recipient (Decryptor.disclose), used as an
    identity: it unwraps every header; the header's MAC then says whether
    it is that file's key."""

    def __init__(self, file_key: bytes) -> None:
        if len(file_key) != FILE_KEY_SIZE:
            raise KeyFormatError("a disclosed file key is 16 bytes")
        self._key = file_key

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        return self._key


def _copy(read: Callable[[int], bytes | None], write: Callable[[bytes], object]) -> None:
    while chunk := read(CHUNK_SIZE * 4):
        write(chunk)


def encrypt(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[Recipient],
    *,
    armor: bool = False,
    rand: Rand = os.urandom,
) -> None:
    """Encrypt everything read from src to recipients, writing to dst."""
    with _io_errors():
        _encrypt_stream(Encryptor(recipients, rand=rand), src, dst, armor)


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> None:
    """Decrypt src (armored or not) with identities, writing to dst.

    Only authenticated chunks are written to dst. If the payload turns out
    to be damaged, PayloadError is raised after the chunks before the damage
    were written: streaming output cannot be taken back, so callers that
    write to a file use decrypt_file, which renames only complete output.
    """
    with _io_errors():
        stream, _ = dearmor(src)
        _copy(Decryptor(stream, identities).reader().read, dst.write)


# --- paths ------------------------------------------------------------------


@contextlib.contextmanager
def _io_errors() -> Iterator[None]:
    """Report a failed read or write as FileError (a broken pipe passes:
    the CLI ends quietly when its reader goes away)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise FileError(f"I/O error: {e.strerror}") from None


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
    jobs = jobs or _parallel.default_jobs()
    src = _open_input(input)
    try:
        with _io_errors():
            enc = Encryptor(recipients, rand=rand)
            with _output(output) as (dst, regular):
                size = _remaining(src)
                if (
                    regular
                    and not armor
                    and size is not None
                    and _parallel.worth_it(chunk_count(size), jobs)
                ):
                    _encrypt_parallel(enc, src, size, dst, jobs)
                else:
                    _encrypt_stream(enc, src, dst, armor)
    finally:
        if input is not None:
            src.close()


def _encrypt_stream(enc: Encryptor, src: BinaryIO, dst: BinaryIO, armor: bool) -> None:
    if armor:
        with ArmoredWriter(dst) as a:
            with enc.writer(a) as w:  # type: ignore[arg-type]
                _copy(src.read, w.write)
    else:
        with enc.writer(dst) as w:
            _copy(src.read, w.write)
    dst.flush()


def _encrypt_parallel(enc: Encryptor, src: BinaryIO, size: int, dst: BinaryIO, jobs: int) -> None:
    aead = enc.start(dst)
    dst.flush()
    offset = len(enc.header) + NONCE_SIZE
    src_fd, dst_fd = src.fileno(), dst.fileno()
    # pread offsets are absolute: the plaintext starts where src stands
    # (not at 0 for a redirected stdin that was partly read).
    start = src.tell()

    def work(first: int, end: int) -> None:
        _parallel.seal_range(aead, src_fd, start, size, dst_fd, offset, first, end)

    _parallel.run(work, _parallel.shares(chunk_count(size), jobs))


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
    jobs = jobs or _parallel.default_jobs()
    src = _open_input(input)
    try:
        with _io_errors():
            stream, armored = dearmor(src)
            d = Decryptor(stream, identities)
            with _output(output) as (dst, regular):
                size = None if armored else _remaining(src)
                if (
                    regular
                    and size is not None
                    and _parallel.worth_it(-(-size // ENC_CHUNK_SIZE), jobs)
                ):
                    _decrypt_parallel(d, src, size, dst, jobs)
                else:
                    _copy(d.reader().read, dst.write)
                    dst.flush()
    finally:
        if input is not None:
            src.close()


def _decrypt_parallel(d: Decryptor, src: BinaryIO, size: int, dst: BinaryIO, jobs: int) -> None:
    aead = d.payload_aead
    src_fd, dst_fd = src.fileno(), dst.fileno()
    offset = src.tell()

    def work(first: int, end: int) -> None:
        _parallel.open_range(aead, src_fd, offset, size, dst_fd, first, end)

    _parallel.run(work, _parallel.shares(-(-size // ENC_CHUNK_SIZE), jobs))
    if os.fstat(src_fd).st_size - offset != size:
        raise FileError("the input file changed while it was being decrypted")
