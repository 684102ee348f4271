"""Sealing a letter on every core, when every part is a regular file.

letters.seal streams: one thread encrypts (pyca's AEAD holds the GIL) while
others hash and write, which cannot beat age on a single core's worth of
ChaCha20-Poly1305. When the body and every attachment are regular files,
the whole letter is known before a byte is read: the header, then each part
cut into 1 MiB segments, then the padding, then the final segment. So the
segments are cut into one contiguous run per worker process (age/_parallel
forks them), and each worker reads its segments, hashes and signs them, and
seals the STREAM chunks that lie wholly inside its run, written in place
with pwrite.

Every byte of every file is still read exactly once, by one worker: a file
that changes while it is sealed gives segments that each match their
signature, as on the streaming path. What the workers cannot do is left to
the parent: the chunk that straddles two runs (from the bytes both workers
hand back), and the end of the letter (the final segment holds the manifest,
which needs every segment's hash). Last, one more worker hashes the
ciphertext for the envelope id, in windows mapped from the output.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import stat
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import blake3
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import age
from .age import _parallel
from .age._stream import CHUNK_SIZE, ENC_CHUNK_SIZE, EncryptingWriter, chunk_nonce
from .errors import FileError
from .letter import (
    DATA,
    PADDING,
    SEGMENT_HEAD,
    SEGMENT_SIZE,
    SIGNATURE_SIZE,
    LetterWriter,
    padme,
    segment_hash,
)

HASH_SIZE = 32
# Sealed chunks per pwrite: 1 MiB of plaintext per system call.
BATCH = 16
# The envelope id is hashed through windows this large mapped from the
# output: reading the ciphertext back with read() would copy it once more,
# and mapping it whole would count all of it in the peak RSS.
WINDOW = 8 << 20


@dataclass(frozen=True)
class _Segment:
    offset: int  # where its head starts, in the letter
    kind: int
    part: int
    length: int
    fd: int  # where its data comes from; -1 for padding (zeros)
    at: int  # and from where in that file


@dataclass(frozen=True)
class Plan:
    """Where every segment of the letter lies, and the files they read."""

    parts: list[tuple[str | None, int, int, int]]  # (name, fd, position, size)
    padding: int
    segments: list[_Segment]
    end: int  # where the final segment starts

    @property
    def chunks(self) -> int:
        """The whole STREAM chunks before the final segment: those the
        workers seal."""
        return self.end // CHUNK_SIZE

    def start(self, segment: int) -> int:
        """Where the run beginning at this segment starts (the first run
        also holds the letter's header)."""
        if segment == 0:
            return 0
        if segment == len(self.segments):
            return self.end
        return self.segments[segment].offset


def plan(prefix: int, parts: Sequence[tuple[str | None, BinaryIO]], pad: bool) -> Plan | None:
    """The layout of a letter whose header takes prefix bytes, or None when
    a part is not a regular file (a pipe, a terminal, a socket)."""
    files = []
    for name, src in parts:
        try:
            fd = src.fileno()
            st = os.fstat(fd)
            position = src.tell()
            size = max(0, st.st_size - position)
            # Some regular files say nothing true of their size (/proc,
            # /sys): those are read as a stream, to their real end.
            if not stat.S_ISREG(st.st_mode) or not _ends_at(fd, position + size):
                return None
        except (OSError, AttributeError, ValueError):
            return None
        files.append((name, fd, position, size))
    # The same cut as LetterWriter.add_part: full segments, then the rest;
    # an empty part has none.
    overhead = SEGMENT_HEAD.size + SIGNATURE_SIZE
    segments = []
    offset = prefix
    for index, (_, fd, position, size) in enumerate(files):
        for at in range(0, size, SEGMENT_SIZE):
            n = min(SEGMENT_SIZE, size - at)
            segments.append(_Segment(offset, DATA, index, n, fd, position + at))
            offset += overhead + n
    content = sum(size for *_, size in files)
    padding = padme(content) - content if pad else 0
    for at in range(0, padding, SEGMENT_SIZE):
        n = min(SEGMENT_SIZE, padding - at)
        segments.append(_Segment(offset, PADDING, 0, n, -1, 0))
        offset += overhead + n
    return Plan(files, padding, segments, offset)


def _ends_at(fd: int, end: int) -> bool:
    return os.fstat(fd).st_size == end and not os.pread(fd, 1, end)


def usable(dst: BinaryIO) -> bool:
    """Whether dst takes pwrite and can be read back (for the envelope id)."""
    try:
        fd = dst.fileno()
        return stat.S_ISREG(os.fstat(fd).st_mode) and (
            fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
        )
    except (OSError, AttributeError, ValueError):
        return False


def worth_it(p: Plan, jobs: int) -> bool:
    return _parallel.worth_it(p.chunks, jobs)


def seal(
    enc: age.Encryptor, letter: LetterWriter, p: Plan, dst: BinaryIO, jobs: int
) -> tuple[str, str, int]:
    """Write the age ciphertext of the letter p lays out to dst, from its
    current position; return the letter id, the envelope id and the
    ciphertext's length. No other thread may be running: this forks."""
    base = dst.tell()
    aead = enc.start(dst)
    dst.flush()
    payload = base + len(enc.header) + len(enc.nonce)
    dst_fd = dst.fileno()
    bounds = _runs(p, jobs)

    def work(first: int, end: int) -> bytes:
        return _seal_run(aead, letter, p, first, end, dst_fd, payload)

    results = _parallel.run(work, bounds)
    hashes: list[bytes] = []
    leads: list[bytes] = []
    trails: list[bytes] = []
    for k, result in enumerate(results):
        count = (bounds[k + 1] - bounds[k]) * HASH_SIZE
        lead = -p.start(bounds[k]) % CHUNK_SIZE
        hashes += [result[i : i + HASH_SIZE] for i in range(0, count, HASH_SIZE)]
        leads.append(result[count : count + lead])
        trails.append(result[count + lead :])
    # The chunk that straddles two runs: the end of one, the start of the next.
    for k in range(1, len(results)):
        start = p.start(bounds[k])
        if start % CHUNK_SIZE:
            index = start // CHUNK_SIZE
            sealed = aead.encrypt(chunk_nonce(index, False), trails[k - 1] + leads[k], None)
            _parallel.pwrite(dst_fd, memoryview(sealed), payload + index * ENC_CHUNK_SIZE)
    for _, fd, position, size in p.parts:
        if not _ends_at(fd, position + size):
            raise FileError("a part of the letter grew while it was being sealed")

    at = 0
    for name, _, _, size in p.parts:
        n = -(-size // SEGMENT_SIZE)
        letter.add_written_part(name, size, hashes[at : at + n])
        at += n
    letter.add_written_padding(p.padding, hashes[at:])
    # The last stretch, on this core: the bytes after the last whole chunk,
    # then the final segment.
    dst.seek(payload + p.chunks * ENC_CHUNK_SIZE)
    tail = EncryptingWriter(aead, dst, counter=p.chunks)
    tail.write(trails[-1])
    letter.out = tail.write
    letter_id = letter.close()
    tail.close()
    dst.flush()
    end = dst.tell()
    # In a child of its own: blake3's threads would otherwise outlive the
    # hash in this process (and the next fork would copy a threaded
    # process), and a mapping of a file someone truncates ends with
    # SIGBUS, which a worker may die of but this process must not.
    [digest] = _parallel.run(lambda _a, _b: _hash(dst_fd, base, end).encode(), [0, 1], _idle)
    return letter_id, digest.decode(), end - base


def _idle() -> None:
    """The parent's part while its one worker hashes: waiting."""


def _runs(p: Plan, jobs: int) -> list[int]:
    """Segment bounds of one run per worker: the chunk shares, each moved on
    to the next segment start. A share is at least 4 MiB and a segment
    at most 1 MiB, so every run still covers whole chunks."""
    cuts = _parallel.shares(p.chunks, jobs)
    starts = [s.offset for s in p.segments]
    inner = [bisect_left(starts, c * CHUNK_SIZE) for c in cuts[1:-1]]
    return [0, *inner, len(p.segments)]


def _seal_run(
    aead: ChaCha20Poly1305,
    letter: LetterWriter,
    p: Plan,
    first: int,
    end: int,
    dst_fd: int,
    payload: int,
) -> bytes:
    """Read, hash, sign and seal segments [first, end). Returns their hashes,
    then the bytes before the run's first whole chunk and after its last."""
    sealer = _ChunkSealer(aead, dst_fd, payload, p.start(first))
    if first == 0:
        sealer.feed(letter.prefix)
    buf = memoryview(bytearray(SEGMENT_SIZE))
    zeros = memoryview(bytes(SEGMENT_SIZE if p.padding else 0))
    hashes = []
    for index in range(first, end):
        s = p.segments[index]
        head = SEGMENT_HEAD.pack(s.kind, s.part, s.length)
        if s.fd < 0:
            data = zeros[: s.length]
        else:
            data = buf[: s.length]
            if _parallel.pread_into(s.fd, data, s.at) != s.length:
                raise FileError("a part of the letter shrank while it was being sealed")
        seg_hash = segment_hash(head, data)
        sealer.feed(head)
        sealer.feed(data)
        sealer.feed(letter.sign(index, False, seg_hash))
        hashes.append(seg_hash)
    lead, trail = sealer.finish()
    return b"".join(hashes) + lead + trail


class _ChunkSealer:
    """Seals the whole STREAM chunks of a run of plaintext fed in pieces, and
    keeps the bytes before its first chunk boundary (the lead) and after its
    last (the trail) for the parent. None of these chunks is the final one:
    the final segment comes after every run."""

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
            _parallel.pwrite(self._fd, self._out[: self._used], offset)
        self._first = self._next
        self._used = 0

    def finish(self) -> tuple[bytes, bytes]:
        self._flush()
        return bytes(self._lead), bytes(self._carry)


def _hash(fd: int, start: int, end: int) -> str:
    """BLAKE3 of fd's bytes [start, end), on every core (the output is
    fresh in the page cache), through WINDOW-sized mappings. Runs in a
    worker process (see seal)."""
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    at = start
    while at < end:
        base = at - at % mmap.ALLOCATIONGRANULARITY
        n = min(WINDOW, end - base)
        with mmap.mmap(fd, n, offset=base, prot=mmap.PROT_READ) as window:
            with memoryview(window) as view:
                h.update(view[at - base :])
        at = base + n
    return h.hexdigest()
