"""STREAM chunks out of order, for a caller that works on several cores.

A signed letter in a regular file is sealed and opened by worker processes
that each take a run of its segments (pouch.letter). They need the payload
at chunk granularity rather than as a stream:

- PayloadReader: random access to an age payload's plaintext, each chunk
  authenticated before a byte of it is used;
- PayloadSealer: the payload key of a file being written, which seals runs
  of whole chunks in place (ChunkRun), single chunks, and a stream of the
  rest (EncryptingWriter from a given counter).

The per-chunk rules are _stream.py's, so every path seals and opens the
same bytes.
"""

from __future__ import annotations

from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._cores import pread_into, pwrite
from ..errors import PayloadError
from ._stream import (
    BATCH,
    CHUNK_SIZE,
    ENC_CHUNK_SIZE,
    TAG_SIZE,
    TRUNCATED,
    EncryptingWriter,
    chunk_nonce,
    open_chunk,
)


class PayloadReader:
    """Random access to an age payload's plaintext, a chunk at a time; each
    chunk is authenticated before a byte of it is used.

    The payload is length bytes of fd from offset (just after the nonce).
    fd is read with pread, so a reader can be used in a forked worker. The
    caller reads only within size: what lies past it is its format's
    business (a letter cut short), not a damaged payload.
    """

    def __init__(
        self, aead: ChaCha20Poly1305, fd: int, offset: int, length: int, batch: int = 1
    ) -> None:
        """batch is how many chunks each read takes: one to walk through
        small pieces (a letter's segment heads), BATCH to read it through."""
        self._aead = aead
        self._fd = fd
        self._offset = offset
        self._length = length
        self._batch = batch
        self.chunks = -(-length // ENC_CHUNK_SIZE)
        self.size = length - self.chunks * TAG_SIZE  # the plaintext's
        self._window = memoryview(bytearray(batch * ENC_CHUNK_SIZE))
        self._first = self._end = 0  # the chunks in _window
        self._plain = bytearray(CHUNK_SIZE)
        self._cached = -1  # the chunk in _plain

    def check_last(self) -> None:
        """Open the last chunk: a file cut short or with data after its end
        fails here, with the streaming reader's error."""
        if not self.chunks:
            raise PayloadError(TRUNCATED)
        i = self.chunks - 1
        _, error = open_chunk(self._aead, i, bytes(self._cipher(i)), True)
        if error is not None:
            raise error

    def batched(self) -> PayloadReader:
        """The same payload, read BATCH chunks at a time."""
        return PayloadReader(self._aead, self._fd, self._offset, self._length, BATCH)

    def read_into(self, offset: int, out: memoryview) -> None:
        """Fill out with the plaintext at offset."""
        if offset + len(out) > self.size:
            raise PayloadError("a read past the end of the payload")
        while out:
            i, within = divmod(offset, CHUNK_SIZE)
            size = min(CHUNK_SIZE, self.size - i * CHUNK_SIZE)
            take = min(len(out), size - within)
            if take == CHUNK_SIZE:  # a whole chunk: straight into out
                self._open(i, out[:take])
            else:
                if self._cached != i:
                    self._open(i, memoryview(self._plain)[:size])
                    self._cached = i
                out[:take] = self._plain[within : within + take]
            out = out[take:]
            offset += take

    def read(self, offset: int, n: int) -> bytes:
        out = bytearray(n)
        self.read_into(offset, memoryview(out))
        return bytes(out)

    def _cipher(self, i: int) -> memoryview:
        if not self._first <= i < self._end:
            self._first = i
            self._end = min(i + self._batch, self.chunks)
            start = i * ENC_CHUNK_SIZE
            want = min(self._end * ENC_CHUNK_SIZE, self._length) - start
            if pread_into(self._fd, self._window[:want], self._offset + start) != want:
                raise PayloadError("file truncated while it was being read")
        at = (i - self._first) * ENC_CHUNK_SIZE
        end = min(at + ENC_CHUNK_SIZE, self._length - self._first * ENC_CHUNK_SIZE)
        return self._window[at:end]

    def _open(self, i: int, out: memoryview) -> None:
        try:
            self._aead.decrypt_into(
                chunk_nonce(i, i == self.chunks - 1), self._cipher(i), None, out
            )
        except InvalidTag:
            raise PayloadError(
                f"the file was altered or damaged: chunk {i} does not authenticate"
            ) from None


class PayloadSealer:
    """The payload key of one file being written (Encryptor.start): its
    chunks may be sealed in any order, each exactly once, by whoever holds
    it (forked workers included)."""

    def __init__(self, aead: ChaCha20Poly1305) -> None:
        self._aead = aead

    def seal_chunk(self, index: int, plain: bytes, last: bool = False) -> bytes:
        """Chunk index, sealed (with the final flag if last)."""
        return self._aead.encrypt(chunk_nonce(index, last), plain, None)

    def run(self, fd: int, payload: int, start: int) -> ChunkRun:
        """A run of plaintext starting start bytes into the payload, whose
        whole chunks are sealed and written into fd, where the payload
        begins at offset payload."""
        return ChunkRun(self._aead, fd, payload, start)

    def writer(self, dst: BinaryIO, counter: int) -> EncryptingWriter:
        """The rest of the payload as a stream, from chunk counter on, to
        dst (at that chunk's place); closing it seals the final chunk."""
        return EncryptingWriter(self._aead, dst, counter)


class ChunkRun:
    """Seals the whole STREAM chunks of a run of plaintext fed in pieces,
    and keeps the bytes before its first chunk boundary (the lead) and
    after its last (the trail) for whoever seals the chunks they belong
    to. None of these chunks is the final one."""

    def __init__(self, aead: ChaCha20Poly1305, fd: int, payload: int, start: int) -> None:
        self._aead = aead
        self._fd = fd
        self._payload = payload
        self._lead_left = -start % CHUNK_SIZE
        self._lead = bytearray()
        self._carry = bytearray()
        self._next = -(-start // CHUNK_SIZE)  # the next chunk's counter
        self._out = memoryview(bytearray(BATCH * ENC_CHUNK_SIZE))
        self._used = 0
        self._first = self._next  # the first chunk in _out

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self._lead_left:
            take = view[: self._lead_left]
            self._lead += take
            self._lead_left -= len(take)
            view = view[len(take) :]
        if self._carry:
            take = view[: CHUNK_SIZE - len(self._carry)]
            self._carry += take
            view = view[len(take) :]
            if len(self._carry) < CHUNK_SIZE:
                return
            with memoryview(self._carry) as chunk:
                self._seal(chunk)
            self._carry.clear()
        while len(view) >= CHUNK_SIZE:
            self._seal(view[:CHUNK_SIZE])
            view = view[CHUNK_SIZE:]
        self._carry += view

    def finish(self) -> tuple[bytes, bytes]:
        """Write what is sealed; the lead and the trail."""
        self._flush()
        return bytes(self._lead), bytes(self._carry)

    def _seal(self, chunk: memoryview) -> None:
        out = self._out[self._used : self._used + ENC_CHUNK_SIZE]
        self._aead.encrypt_into(chunk_nonce(self._next, False), chunk, None, out)
        self._next += 1
        self._used += ENC_CHUNK_SIZE
        if self._used == len(self._out):
            self._flush()

    def _flush(self) -> None:
        if self._used:
            offset = self._payload + self._first * ENC_CHUNK_SIZE
            pwrite(self._fd, self._out[: self._used], offset)
        self._first = self._next
        self._used = 0
