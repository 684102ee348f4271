"""Opening a letter on every core, when it comes in a regular file and its
parts go to regular files.

_open.py streams: one thread decrypts (pyca's AEAD holds the GIL)
while others hash and write. A letter in a file can be opened on several
cores instead, because its layout can be read cheaply ahead of its content:
each segment's head (kind, part, length) tells where the next one starts,
and reading a head means opening one STREAM chunk in sixteen. So:

1. The last chunk is opened first (a truncated or extended file fails here,
   as it would on the streaming path), then the letter's header, which is
   checked as on the streaming path (addressed to this identity, bound to
   this envelope).
2. The heads are walked, and the whole layout is held to the letter's shape
   rules (Checks.shape) before a byte is written.
3. The segments are cut into one run per worker process (pouch._cores forks
   them); each worker reads its run through the age engine's random access
   (age.PayloadReader), hashes every segment, verifies its signature (and
   that padding is zeros), and writes the data in place into the part's
   file with pwrite. Meanwhile the parent hashes the ciphertext for the
   envelope id.
4. The parent takes the segment hashes in order (Checks.count), then opens
   and verifies the final segment and its manifest.

What a worker writes is what that worker verified. Nothing is published
here: the caller renames the part files only once this returns.
"""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

import blake3

from .. import _cores, container
from ..age import PayloadReader
from ..errors import LetterError, PayloadError
from ._format import (
    DATA,
    FINAL,
    HASH_SIZE,
    LENGTH,
    MAX_MANIFEST,
    MAX_PARTS,
    PADDING,
    PREAMBLE,
    SEGMENT_HEAD,
    SEGMENT_SIZE,
    SIGNATURE_SIZE,
    segment_hash,
)
from ._segments import ZEROS, Checks


@dataclass(frozen=True)
class _Segment:
    index: int
    offset: int  # where its head starts, in the letter
    kind: int
    part: int
    length: int
    at: int  # where its data goes in the part's file


class TooManySegmentsError(Exception):
    """More segments than a letter of this size holds when its writer cuts
    full segments: legal for a sender, but then opened as a stream."""


def layout(p: PayloadReader, start: int, checks: Checks) -> tuple[list[_Segment], _Segment]:
    """Walk the heads from start: the data and padding segments, each held
    to the shape rules, and the final one.

    The first segment's signature is verified before the walk: whoever
    cannot sign as the sender gets no further than the streaming reader
    would let them. The layout costs memory per segment, so a letter cut
    into more segments than full ones make (up to one short one per part,
    and one of padding) raises TooManySegmentsError.
    """
    segments: list[_Segment] = []
    written: dict[int, int] = {}
    offset = start
    overhead = SEGMENT_HEAD.size + SIGNATURE_SIZE
    limit = p.size // SEGMENT_SIZE + MAX_PARTS + 2
    while True:
        index = len(segments)
        if index > limit:
            raise TooManySegmentsError
        if offset + SEGMENT_HEAD.size > p.size:
            raise LetterError("letter truncated: the final segment is missing")
        kind, part, length = SEGMENT_HEAD.unpack(p.read(offset, SEGMENT_HEAD.size))
        limit = MAX_MANIFEST if kind == FINAL else SEGMENT_SIZE
        if kind not in (DATA, PADDING, FINAL) or length > limit:
            raise LetterError(f"malformed letter: bad segment {index}")
        if offset + overhead + length > p.size:
            raise LetterError("letter truncated: the final segment is missing")
        seg = _Segment(index, offset, kind, part, length, written.get(part, 0))
        if index == 0:
            verify_segment(p, checks, seg)
        offset += overhead + length
        if kind == FINAL:
            if offset != p.size:
                raise LetterError("malformed letter: data after the final segment")
            return segments, seg
        checks.shape(index, kind, part, length)
        if kind == DATA:
            written[part] = seg.at + length
        segments.append(seg)


def verify_segment(p: PayloadReader, checks: Checks, seg: _Segment) -> tuple[bytes, bytes]:
    """Read and verify one segment here: its data and its hash."""
    whole = p.read(seg.offset, SEGMENT_HEAD.size + seg.length + SIGNATURE_SIZE)
    head, data = whole[: SEGMENT_HEAD.size], whole[SEGMENT_HEAD.size : -SIGNATURE_SIZE]
    seg_hash = segment_hash(head, data)
    checks.verify(seg.index, seg.kind == FINAL, seg_hash, whole[-SIGNATURE_SIZE:])
    return data, seg_hash


def usable(files: dict[int, BinaryIO | None]) -> dict[int, int] | None:
    """The file descriptors of the parts' files, or None unless each is a
    fresh file of its own: regular, empty, at offset 0, not in append mode,
    and no two the same. Workers write at fixed offsets with pwrite, which
    a terminal, a pipe, memory, a file with content before, a file shared
    between parts or with stderr, or O_APPEND would turn into a wrong
    result."""
    fds = {}
    seen = set()
    for part, f in files.items():
        if f is None:
            continue
        try:
            fd = f.fileno()
            st = os.fstat(fd)
            if (
                not stat.S_ISREG(st.st_mode)
                or st.st_size
                or os.lseek(fd, 0, os.SEEK_CUR)
                or fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
                or (st.st_dev, st.st_ino) in seen
            ):
                return None
        except (OSError, AttributeError, ValueError):
            return None
        seen.add((st.st_dev, st.st_ino))
        fds[part] = fd
    return fds


def written(files: dict[int, BinaryIO | None], segments: list[_Segment]) -> None:
    """Leave each part's file where a stream of writes would have: at its end."""
    ends = {s.part: s.at + s.length for s in segments if s.kind == DATA}
    for part, f in files.items():
        if f is not None:
            f.seek(ends.get(part, 0))


def open_segments(
    p: PayloadReader,
    checks: Checks,
    segments: list[_Segment],
    fds: dict[int, int],
    c: container.Container,
    jobs: int,
) -> str:
    """Verify and write every data and padding segment on jobs processes,
    then count them into checks in order. Returns the envelope id, hashed
    meanwhile."""
    bounds = _runs(segments, jobs)
    envelope = blake3.blake3()

    def work(first: int, end: int) -> bytes:
        return _open_run(p.batched(), checks, segments[first:end], fds)

    def meanwhile() -> None:
        _hash(envelope, c.src.fileno(), c.age_offset, c.age_offset + c.age_length)

    results = _cores.run(work, bounds, meanwhile)
    hashes = b"".join(results)
    for seg in segments:
        at = seg.index * HASH_SIZE
        checks.count(seg.kind, seg.part, seg.length, hashes[at : at + HASH_SIZE])
    return envelope.hexdigest()


def _runs(segments: list[_Segment], jobs: int) -> list[int]:
    """One run of segments per worker, of about the same length."""
    total = sum(s.length for s in segments) or 1
    jobs = max(1, min(jobs, len(segments)))
    bounds = [0]
    done = 0
    for i, seg in enumerate(segments):
        if done * jobs >= total * len(bounds) and len(bounds) < jobs:
            bounds.append(i)
        done += seg.length
    return [*bounds, len(segments)]


def _open_run(
    p: PayloadReader,
    checks: Checks,
    segments: list[_Segment],
    fds: dict[int, int],
) -> bytes:
    """Open, hash and verify these segments, write their data; their hashes."""
    buf = memoryview(bytearray(SEGMENT_HEAD.size + SEGMENT_SIZE + SIGNATURE_SIZE))
    hashes = []
    for seg in segments:
        whole = buf[: SEGMENT_HEAD.size + seg.length + SIGNATURE_SIZE]
        p.read_into(seg.offset, whole)
        head = whole[: SEGMENT_HEAD.size]
        data = whole[SEGMENT_HEAD.size : SEGMENT_HEAD.size + seg.length]
        seg_hash = segment_hash(bytes(head), data)
        checks.verify(seg.index, False, seg_hash, bytes(whole[-SIGNATURE_SIZE:]))
        if seg.kind == PADDING:
            if data != ZEROS[: seg.length]:
                raise LetterError("malformed letter: bad padding segment")
        elif (fd := fds.get(seg.part)) is not None:
            _cores.pwrite(fd, data, seg.at)
        hashes.append(seg_hash)
    return b"".join(hashes)


def letter_start(header_bytes: bytes) -> int:
    """Where the first segment starts, in the letter."""
    return len(PREAMBLE) + LENGTH.size + len(header_bytes)


def _hash(h: blake3.blake3, fd: int, start: int, end: int) -> None:
    """Hash fd's bytes [start, end). With pread, not a mapping: the input
    comes from a courier and may shrink under us, which a mapping would
    turn into SIGBUS."""
    buf = memoryview(bytearray(1 << 20))
    at = start
    while at < end:
        n = _cores.pread_into(fd, buf[: min(len(buf), end - at)], at)
        if not n:
            raise PayloadError("file truncated while it was being read")
        h.update(buf[:n])
        at += n
