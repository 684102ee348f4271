"""The age v1 payload: STREAM over ChaCha20-Poly1305 (C2SP age spec, "Payload").

    payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")

The plaintext is cut into 64 KiB chunks; chunk i is sealed with the nonce
i as 11 big-endian bytes followed by 0x01 for the final chunk and 0x00 for
the others. The final chunk may be shorter than 64 KiB but must not be empty
unless the whole payload is.

Chunks are independent, which is what lets _parallel.py seal and open them
on every core, and _chunks.py read and seal them out of order. This module
holds the per-chunk rules (shared by every path) and the sequential reader
and writer used for pipes and armor.
"""

from __future__ import annotations

from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._io import PieceReader
from .._kdf import hkdf_sha256
from ..errors import PayloadError

NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# Chunks per read and write on the positioned paths (_parallel.py,
# _chunks.py): 128 KiB of plaintext per system call, so that the buffers
# read into, sealed and written from stay in the core's cache. Memory is
# slow on this project's VM: reading 512 MiB from the page cache took
# 0.11 s into a 64 KiB buffer and 0.33-0.38 s into a 1 MiB one, and
# `pouch age` took 0.56 s to encrypt 512 MiB on ext4 with 2 chunks a
# call, 0.64 s with 3, 0.77 s with 4, 0.9 s with 16 (2026-12-03, medians
# of 5-7 runs).
BATCH = 2
_MAX_COUNTER = 1 << 88

PAYLOAD_LABEL = b"payload"


def payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(hkdf_sha256(file_key, nonce, PAYLOAD_LABEL))


def chunk_nonce(counter: int, last: bool) -> bytes:
    if counter >= _MAX_COUNTER:
        raise PayloadError("payload too large: STREAM chunk counter overflow")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def chunk_count(plaintext_size: int) -> int:
    """How many chunks a payload of this size is sealed into (at least one)."""
    return max(1, -(-plaintext_size // CHUNK_SIZE))


TRUNCATED = "file truncated: final chunk missing"


def open_chunk(
    aead: ChaCha20Poly1305, counter: int, data: bytes, last: bool
) -> tuple[bytes, PayloadError | None]:
    """Authenticate and decrypt one chunk.

    last says whether the chunk ends the ciphertext. Returns the plaintext and,
    when the chunk authenticates only with the other final flag, the error to
    raise once that plaintext is released: the chunk itself is authentic, but
    the stream around it is truncated or has data after its end. Raises
    PayloadError when the chunk does not authenticate at all.
    """
    if last:
        if len(data) < TAG_SIZE:
            raise PayloadError("file truncated: the last chunk is cut short")
        if len(data) == TAG_SIZE and counter > 0:
            # Spec: the final chunk "MUST NOT be empty unless the whole payload
            # is empty"; otherwise a chunk boundary would have two encodings.
            raise PayloadError("malformed payload: the final chunk is empty")
    try:
        return aead.decrypt(chunk_nonce(counter, last), data, None), None
    except InvalidTag:
        pass
    if not last or len(data) == ENC_CHUNK_SIZE:
        try:
            plain = aead.decrypt(chunk_nonce(counter, not last), data, None)
        except InvalidTag:
            pass
        else:
            if last:
                return plain, PayloadError(TRUNCATED)
            return plain, PayloadError("malformed payload: data after the final chunk")
    raise PayloadError(f"the file was altered or damaged: chunk {counter} does not authenticate")


class EncryptingWriter:
    """Seals plaintext written to it into STREAM chunks written to dst.

    close() seals the final chunk; it does not close dst.
    """

    def __init__(self, aead: ChaCha20Poly1305, dst: BinaryIO, counter: int = 0) -> None:
        """counter is the first chunk's: not 0 when the chunks before it
        were sealed elsewhere (on other cores)."""
        self._aead = aead
        self._dst = dst
        self._buf = bytearray()
        self._counter = counter
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        view = memoryview(data).cast("B")
        n = len(view)
        # A full chunk is sealed only once more data arrives: until then it
        # may be the final one. At most one chunk waits in the buffer; the
        # others are sealed straight from the caller's data, uncopied.
        if self._buf:
            take = min(CHUNK_SIZE - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if not view:
                return n
            self._seal(self._buf, last=False)
            self._buf.clear()
        while len(view) > CHUNK_SIZE:
            self._seal(view[:CHUNK_SIZE], last=False)
            view = view[CHUNK_SIZE:]
        self._buf += view
        return n

    def _seal(self, chunk: bytes | bytearray | memoryview, last: bool) -> None:
        nonce = chunk_nonce(self._counter, last)
        self._dst.write(self._aead.encrypt(nonce, chunk, None))
        self._counter += 1

    def close(self) -> None:
        if not self._closed:
            self._seal(self._buf, last=True)
            self._buf.clear()
            self._closed = True

    def __enter__(self) -> EncryptingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


class DecryptingReader(PieceReader):
    """Plaintext of a STREAM payload; releases only authenticated chunks.

    A chunk is returned only after its tag verified. When the stream turns
    out to be truncated or to carry data after its final chunk, the chunks
    that did authenticate have been released and the next read raises
    PayloadError, as the age reference implementation does (the conformance
    vectors check exactly what was released).
    """

    def __init__(self, aead: ChaCha20Poly1305, src: BinaryIO) -> None:
        super().__init__()
        self._aead = aead
        self._src = src
        self._counter = 0
        self._lookahead = b""
        self._chunk = bytearray(ENC_CHUNK_SIZE)

    def _read_chunk(self) -> tuple[memoryview, bool]:
        """The next sealed chunk (in a reused buffer) and whether it is the
        last one."""
        view = memoryview(self._chunk)
        have = len(self._lookahead)
        view[:have] = self._lookahead
        while have < ENC_CHUNK_SIZE:
            n = self._src.readinto(view[have:])  # type: ignore[attr-defined]
            if not n:
                break
            have += n
        # One byte past a full chunk tells whether it is the last one.
        self._lookahead = self._src.read(1) if have == ENC_CHUNK_SIZE else b""
        if not have:
            # Only reachable before the first chunk: later ends of file are
            # seen by the lookahead, and end the stream at a final chunk.
            raise PayloadError(TRUNCATED)
        return view[:have], not self._lookahead

    def _next(self) -> bytes:
        data, last = self._read_chunk()
        plain, self._error = open_chunk(self._aead, self._counter, bytes(data), last)
        self._counter += 1
        self._done = last
        return plain

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        # Fast path for large reads: decrypt straight into the caller's
        # buffer. Anything unusual (a short read, a failure to report) takes
        # the general path, which names the problem.
        if self._piece or self._error is not None or self._done or len(b) < CHUNK_SIZE:
            return super().readinto(b)
        try:
            data, last = self._read_chunk()
        except PayloadError as e:
            self._error = e
            raise
        plain_len = len(data) - TAG_SIZE
        if plain_len < (1 if self._counter else 0):
            plain = self._slow(data, last)
            n = min(len(b), len(plain))
            b[:n] = plain[:n]
            self._piece = memoryview(plain)[n:]
            return n
        try:
            nonce = chunk_nonce(self._counter, last)
            self._aead.decrypt_into(nonce, data, None, memoryview(b)[:plain_len])
        except InvalidTag:
            plain = self._slow(data, last)
            n = min(len(b), len(plain))
            b[:n] = plain[:n]
            self._piece = memoryview(plain)[n:]
            return n
        self._counter += 1
        self._done = last
        return plain_len

    def _slow(self, data: memoryview, last: bool) -> bytes:
        try:
            plain, self._error = open_chunk(self._aead, self._counter, bytes(data), last)
        except PayloadError as e:
            self._error = e
            raise
        self._counter += 1
        self._done = last
        return plain
