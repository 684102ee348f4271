"""Sealing a letter on every core, when every part is a regular file.

_seal.py streams: one thread encrypts (pyca's AEAD holds the GIL) while
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

from .. import _cores, age
from ..age import CHUNK_SIZE, ENC_CHUNK_SIZE, PayloadSealer
from ..errors import FileError
from ._format import (
    DATA,
    HASH_SIZE,
    PADDING,
    SEGMENT_HEAD,
    SEGMENT_SIZE,
    SIGNATURE_SIZE,
    padme,
    segment_hash,
)
from ._segments import LetterWriter

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
    return _cores.worth_it(p.chunks, jobs)


def seal(
    enc: age.Encryptor, letter: LetterWriter, p: Plan, dst: BinaryIO, jobs: int
) -> tuple[str, str, int]:
    """Write the age ciphertext of the letter p lays out to dst, from its
    current position; return the letter id, the envelope id and the
    ciphertext's length. No other thread may be running: this forks."""
    base = dst.tell()
    sealer = enc.start(dst)
    dst.flush()
    payload = base + len(enc.header) + len(enc.nonce)
    dst_fd = dst.fileno()
    bounds = _runs(p, jobs)

    def work(first: int, end: int) -> bytes:
        return _seal_run(sealer, letter, p, first, end, dst_fd, payload)

    results = _cores.run(work, bounds)
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
            sealed = sealer.seal_chunk(index, trails[k - 1] + leads[k])
            _cores.pwrite(dst_fd, memoryview(sealed), payload + index * ENC_CHUNK_SIZE)
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
    tail = sealer.writer(dst, p.chunks)
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
    [digest] = _cores.run(lambda _a, _b: _hash(dst_fd, base, end).encode(), [0, 1], _idle)
    return letter_id, digest.decode(), end - base


def _idle() -> None:
    """The parent's part while its one worker hashes: waiting."""


def _runs(p: Plan, jobs: int) -> list[int]:
    """Segment bounds of one run per worker: the chunk shares, each moved on
    to the next segment start. A share is at least 4 MiB and a segment
    at most 1 MiB, so every run still covers whole chunks."""
    cuts = _cores.shares(p.chunks, jobs)
    starts = [s.offset for s in p.segments]
    inner = [bisect_left(starts, c * CHUNK_SIZE) for c in cuts[1:-1]]
    return [0, *inner, len(p.segments)]


def _seal_run(
    sealer: PayloadSealer,
    letter: LetterWriter,
    p: Plan,
    first: int,
    end: int,
    dst_fd: int,
    payload: int,
) -> bytes:
    """Read, hash, sign and seal segments [first, end). Returns their hashes,
    then the bytes before the run's first whole chunk and after its last."""
    run = sealer.run(dst_fd, payload, p.start(first))
    if first == 0:
        run.feed(letter.prefix)
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
            if _cores.pread_into(s.fd, data, s.at) != s.length:
                raise FileError("a part of the letter shrank while it was being sealed")
        seg_hash = segment_hash(head, data)
        run.feed(head)
        run.feed(data)
        run.feed(letter.sign(index, False, seg_hash))
        hashes.append(seg_hash)
    lead, trail = run.finish()
    return b"".join(hashes) + lead + trail


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
