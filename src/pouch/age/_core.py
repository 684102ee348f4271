"""age v1 encryption in two phases (c2sp.org/age, v1.1.0): the header and
payload nonce first, then the payload.

A signed letter binds itself to its envelope's header and nonce before its
first byte is written (SPEC.md 2.1), so encryption starts with an
Encryptor, whose header and nonce are known at once; decryption with a
Decryptor, which reads the header, checks its MAC and reads the nonce
before anything of the payload is released.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from .._io import io_errors, read_full
from .._kdf import hkdf_sha256
from ..errors import (
    HeaderError,
    HeaderMacError,
    KeyFormatError,
    NoIdentityMatchError,
    UsageError,
)
from ._chunks import PayloadReader, PayloadSealer
from ._crypto import FILE_KEY_SIZE
from ._format import Header, Stanza, mac_input, parse_header
from ._stream import (
    CHUNK_SIZE,
    NONCE_SIZE,
    DecryptingReader,
    EncryptingWriter,
    payload_aead,
)
from .armor import PEEK_SIZE, ArmoredReader, ArmoredWriter, is_armored
from .scrypt import ScryptIdentity, ScryptRecipient

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
        return self.start(dst).writer(dst, 0)

    def start(self, dst: BinaryIO) -> PayloadSealer:
        """Write header and nonce to dst; return the payload's sealer, for a
        caller that seals the chunks itself, out of order, on several
        cores. The payload follows at once."""
        if self._used:
            raise RuntimeError("an Encryptor seals one payload only")
        self._used = True
        dst.write(self.header + self.nonce)
        return PayloadSealer(self._aead)


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

    def random_access(self, fd: int, start: int, end: int) -> PayloadReader:
        """The payload, read at any offset, for a caller that opens it out
        of order, on several cores: the age file is fd's bytes [start, end)
        (header, nonce, payload)."""
        payload = start + len(self.header) + NONCE_SIZE
        return PayloadReader(self._aead, fd, payload, end - payload)


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


def copy(read: Callable[[int], bytes | None], write: Callable[[bytes], object]) -> None:
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
    with io_errors():
        encrypt_stream(Encryptor(recipients, rand=rand), src, dst, armor)


def encrypt_stream(enc: Encryptor, src: BinaryIO, dst: BinaryIO, armor: bool) -> None:
    """Encrypt src with enc to dst, in one pass."""
    if armor:
        with ArmoredWriter(dst) as a:
            with enc.writer(a) as w:  # type: ignore[arg-type]
                copy(src.read, w.write)
    else:
        with enc.writer(dst) as w:
            copy(src.read, w.write)
    dst.flush()


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> None:
    """Decrypt src (armored or not) with identities, writing to dst.

    Only authenticated chunks are written to dst. If the payload turns out
    to be damaged, PayloadError is raised after the chunks before the damage
    were written: streaming output cannot be taken back, so callers that
    write to a file use decrypt_file, which renames only complete output.
    """
    with io_errors():
        stream, _ = dearmor(src)
        copy(Decryptor(stream, identities).reader().read, dst.write)
