"""Writing and reading a letter's segments (SPEC.md sections 2.2 to 2.4).

LetterWriter emits a letter segment by segment, signing each; LetterReader
reads one back and yields each data segment only once its signature
verified; Checks holds the rules a letter's segments are held to, shared by
the reader and by the parallel opener (_parallel_open.py). Nothing here
decrypts or writes files: the writer emits bytes to a callable and the
reader yields verified data, so that the caller decides where the plaintext
goes, and when (only after the final segment verified).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .. import _canonical
from .._fields import is_int, is_int_in
from .._io import read_full
from .._pipeline import BufferRing, Worker
from ..errors import FileError, LetterError
from ._format import (
    CONTENT_LABEL,
    DATA,
    FINAL,
    HEADER_LABEL,
    ID_LABEL,
    LENGTH,
    MAX_HEADER,
    MAX_MANIFEST,
    MAX_PARTS,
    PADDING,
    PART_LABEL,
    PREAMBLE,
    SEGMENT_HEAD,
    SEGMENT_SIZE,
    SIGNATURE_SIZE,
    VERSION,
    LetterHeader,
    Manifest,
    Part,
    PartKind,
    padme,
    segment_hash,
    signed_message,
)


def _read_into(src: BinaryIO, buf: memoryview) -> int:
    """Fill buf from src; fewer bytes only at the end of the stream."""
    got = 0
    while got < len(buf):
        n = src.readinto(buf[got:])  # type: ignore[attr-defined]
        if n is None:
            # A non-blocking input with nothing to read yet: not the end.
            raise FileError("the input is non-blocking and had no data: use a file or a pipe")
        if not n:
            break
        got += n
    return got


class LetterWriter:
    """Writes a letter to out, segment by segment, signing each."""

    def __init__(
        self,
        out: Callable[[bytes | memoryview], object],
        header: LetterHeader,
        signer: Ed25519PrivateKey,
        pool: Worker | None = None,
    ) -> None:
        """pool, if given, hashes each segment while out() encrypts it:
        BLAKE3 releases the GIL, so the two run on two cores."""
        self.out = out
        self._signer = signer
        self._pool = pool
        encoded = header.encode()
        if len(encoded) > MAX_HEADER:
            raise ValueError("letter header too large")
        self.prefix = PREAMBLE + LENGTH.pack(len(encoded)) + encoded
        out(self.prefix)
        self._header_hash = blake3.blake3(HEADER_LABEL + encoded).digest()
        self._id = blake3.blake3(ID_LABEL + encoded)
        self._content = blake3.blake3(CONTENT_LABEL)
        self._index = 0
        self._parts: list[Part] = []
        self._content_size = 0
        self._padding = 0
        self._part_hash = blake3.blake3(PART_LABEL)
        self.letter_id: str | None = None

    def sign(self, index: int, final: bool, seg_hash: bytes) -> bytes:
        """The signature of segment index, whose hash is seg_hash."""
        return self._signer.sign(signed_message(self._header_hash, index, final, seg_hash))

    def _segment(self, kind: int, part: int, data: bytes | memoryview, final: bool = False) -> None:
        head = SEGMENT_HEAD.pack(kind, part, len(data))
        pending = self._pool.submit(segment_hash, head, data) if self._pool else None
        self.out(head)
        self.out(data)
        seg_hash = pending.result() if pending else segment_hash(head, data)
        self.out(self.sign(self._index, final, seg_hash))
        self._count(kind, seg_hash, final)

    def _count(self, kind: int, seg_hash: bytes, final: bool = False) -> None:
        self._id.update(seg_hash)
        if not final:
            self._content.update(seg_hash)
        self._index += 1
        if kind == DATA:
            self._part_hash.update(seg_hash)

    def add_part(self, src: BinaryIO, name: str | None = None) -> Part:
        """Stream src as the next part: the body first (name None), then
        each attachment under its name."""
        index = self._begin_part(name)
        size = 0
        # One buffer for the whole part: a fresh 1 MiB object per segment is
        # a fresh mapping whose pages cost more to fault in than to encrypt.
        # _segment is done with it (hashed, encrypted) when it returns.
        buf = bytearray(SEGMENT_SIZE)
        while n := _read_into(src, memoryview(buf)):
            size += n
            self._segment(DATA, index, memoryview(buf)[:n])
        return self._end_part(name, size)

    def add_written_part(self, name: str | None, size: int, seg_hashes: Sequence[bytes]) -> Part:
        """Count the next part, size bytes whose segments were written (and
        signed with sign()) elsewhere, in order, with these hashes."""
        self._begin_part(name)
        for seg_hash in seg_hashes:
            self._count(DATA, seg_hash)
        return self._end_part(name, size)

    def _begin_part(self, name: str | None) -> int:
        if (name is None) != (not self._parts):
            raise ValueError("the body comes first, and only the body has no name")
        self._part_hash = blake3.blake3(PART_LABEL)
        return len(self._parts)

    def _end_part(self, name: str | None, size: int) -> Part:
        part = Part(
            "body" if name is None else "attachment", name, size, self._part_hash.hexdigest()
        )
        self._parts.append(part)
        self._content_size += size
        return part

    def pad(self) -> None:
        """Pad the content to its Padmé bucket with zero-filled segments."""
        self._padding = padme(self._content_size) - self._content_size
        left = self._padding
        zeros = bytes(min(left, SEGMENT_SIZE))
        while left:
            n = min(left, SEGMENT_SIZE)
            self._segment(PADDING, 0, memoryview(zeros)[:n])
            left -= n

    def add_written_padding(self, size: int, seg_hashes: Sequence[bytes]) -> None:
        """Count padding written elsewhere, as add_written_part counts a part."""
        self._padding = size
        for seg_hash in seg_hashes:
            self._count(PADDING, seg_hash)

    def close(self) -> str:
        """Write the final segment (the manifest); return the letter id."""
        manifest = Manifest(
            tuple(self._parts), self._index, self._content.hexdigest(), self._padding
        )
        self._segment(FINAL, 0, manifest.encode(), final=True)
        self.letter_id = self._id.hexdigest()
        return self.letter_id


@dataclass
class _PartState:
    size: int = 0
    hash: Any = field(default_factory=lambda: blake3.blake3(PART_LABEL))


class LetterReader:
    """Reads a letter from src (the decrypted age payload).

    header is available at once but is NOT yet authenticated: it is signed
    through the segments. data() yields each data segment's (part, bytes)
    only after its signature verified; the letter as a whole is authentic
    only when data() is exhausted without error, after which manifest and
    letter_id are set.
    """

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        preamble = read_full(src, len(PREAMBLE))
        if preamble != PREAMBLE:
            if preamble.startswith(b"pouch-letter/"):
                raise LetterError("this letter format version is not supported")
            raise LetterError("not a pouch letter: the envelope holds something else")
        length = read_full(src, LENGTH.size)
        if len(length) < LENGTH.size:
            raise LetterError("letter truncated inside its header")
        (n,) = LENGTH.unpack(length)
        if n > MAX_HEADER:
            raise LetterError("malformed letter: header too large")
        self.header_bytes = read_full(src, n)
        if len(self.header_bytes) != n:
            raise LetterError("letter truncated inside its header")
        self.header = LetterHeader.decode(self.header_bytes)
        self.manifest: Manifest | None = None
        self.letter_id: str | None = None
        self._held: Future[Any] | None = None

    def hold(self, future: Future[Any]) -> None:
        """Keep the view data() just yielded valid until future is done (a
        write on a worker); without it, a view is valid until the next one."""
        self._held = future

    def data(
        self, hashes: Worker | None = None, ring: BufferRing | None = None
    ) -> Iterator[tuple[int, memoryview]]:
        """Yield (part, data) for each data segment once its signature
        verified; set manifest and letter_id once the final segment did.

        With a worker, each segment is hashed there while the next one is
        read (decrypted); with a ring, segments are read into reused buffers.
        """
        checks = Checks(self.header, self.header_bytes)
        for seg in self._segments(hashes, ring):
            seg_hash = seg.hash.result() if isinstance(seg.hash, Future) else seg.hash
            final = seg.kind == FINAL
            checks.verify(seg.index, final, seg_hash, seg.signature)
            if final:
                self.manifest = checks.final(seg.index, seg.part, bytes(seg.data), seg_hash)
                break
            checks.shape(seg.index, seg.kind, seg.part, len(seg.data))
            if seg.kind == PADDING and seg.data != ZEROS[: len(seg.data)]:
                raise LetterError("malformed letter: bad padding segment")
            checks.count(seg.kind, seg.part, len(seg.data), seg_hash)
            if seg.kind == PADDING:
                seg.release(ring, None)
                continue
            self._held = None
            yield seg.part, seg.data
            seg.release(ring, self._held)
        if self._src.read(1):
            raise LetterError("malformed letter: data after the final segment")
        self.letter_id = checks.letter_id

    def _segments(self, hashes: Worker | None, ring: BufferRing | None) -> Iterator[_Segment]:
        """Read segments, each hashed (on the worker) while the consumer
        verifies and writes the one before: one segment of lookahead."""
        ahead: _Segment | None = None
        index = 0
        while True:
            seg = self._read_segment(index, hashes, ring)
            if ahead is not None:
                yield ahead
            ahead = seg
            index += 1
            if seg.kind == FINAL:
                yield seg
                return

    def _read_segment(self, index: int, hashes: Worker | None, ring: BufferRing | None) -> _Segment:
        head = read_full(self._src, SEGMENT_HEAD.size)
        if len(head) < SEGMENT_HEAD.size:
            raise LetterError("letter truncated: the final segment is missing")
        kind, part, length = SEGMENT_HEAD.unpack(head)
        limit = MAX_MANIFEST if kind == FINAL else SEGMENT_SIZE
        if kind not in (DATA, PADDING, FINAL) or length > limit:
            raise LetterError(f"malformed letter: bad segment {index}")
        buf = ring.take() if ring is not None and kind != FINAL else bytearray(length)
        data = memoryview(buf)[:length]
        signature = (
            read_full(self._src, SIGNATURE_SIZE) if _read_into(self._src, data) == length else b""
        )
        if len(signature) < SIGNATURE_SIZE:
            raise LetterError("letter truncated: the final segment is missing")
        digest: Future[bytes] | bytes = (
            hashes.submit(segment_hash, head, data) if hashes else segment_hash(head, data)
        )
        return _Segment(index, kind, part, data, signature, digest, buf)


ZEROS = bytes(SEGMENT_SIZE)


class Checks:
    """The rules a letter's segments are held to, in order: each signed by
    the sender; the parts in order, each part's segments full but its last;
    padding after the parts, zeros only; the final segment's manifest
    matching all of it. LetterReader applies them as it reads; the parallel
    opener applies shape() to the whole layout first, its workers verify(),
    and count() follows in order.
    """

    def __init__(self, header: LetterHeader, header_bytes: bytes) -> None:
        self._header = header
        self._key = Ed25519PublicKey.from_public_bytes(header.sender)
        self._header_hash = blake3.blake3(HEADER_LABEL + header_bytes).digest()
        self._id = blake3.blake3(ID_LABEL + header_bytes)
        self._content = blake3.blake3(CONTENT_LABEL)
        self._parts: list[_PartState] = []
        self._shape_parts = 0
        self._shape_short = False
        self._shape_padding = False
        self._padding = 0
        self.letter_id: str | None = None

    def verify(self, index: int, final: bool, seg_hash: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, signed_message(self._header_hash, index, final, seg_hash))
        except InvalidSignature:
            raise LetterError(
                f"segment {index} is not signed by the sender: the letter was altered"
            ) from None

    def shape(self, index: int, kind: int, part: int, length: int) -> None:
        """Where a data or padding segment may stand, from its head alone."""
        if kind == PADDING:
            if part != 0 or not length:
                raise LetterError("malformed letter: bad padding segment")
            self._shape_padding = True
            return
        if self._shape_padding or not length or part < self._shape_parts - 1 or part >= MAX_PARTS:
            raise LetterError(f"malformed letter: segment {index} out of order")
        if part == self._shape_parts - 1 and self._shape_short:
            raise LetterError(f"malformed letter: segment {index} follows a short one")
        self._shape_parts = part + 1
        self._shape_short = length != SEGMENT_SIZE

    def count(self, kind: int, part: int, length: int, seg_hash: bytes) -> None:
        """Take in a data or padding segment that verify() and shape() passed."""
        self._id.update(seg_hash)
        self._content.update(seg_hash)
        if kind == PADDING:
            self._padding += length
            return
        while len(self._parts) <= part:
            self._parts.append(_PartState())
        state = self._parts[part]
        state.size += length
        state.hash.update(seg_hash)

    def final(self, index: int, part: int, manifest: bytes, seg_hash: bytes) -> Manifest:
        """Take in the final segment, once verify() passed; the manifest."""
        self._id.update(seg_hash)
        if part != 0:
            raise LetterError("malformed letter: bad final segment")
        m = _check_manifest(manifest, self._parts, index, self._content.hexdigest(), self._padding)
        # The header's padding policy holds: none, or the Padmé bucket.
        size = sum(p.size for p in m.parts)
        if self._padding != (padme(size) - size if self._header.padding else 0):
            raise LetterError("malformed letter: padding does not match the header")
        self.letter_id = self._id.hexdigest()
        return m


@dataclass
class _Segment:
    index: int
    kind: int
    part: int
    data: memoryview
    signature: bytes
    hash: Future[bytes] | bytes
    buf: bytearray

    def release(self, ring: BufferRing | None, holder: Future[Any] | None) -> None:
        if ring is not None:
            ring.give(self.buf, holder)


def _check_manifest(
    data: bytes, parts: list[_PartState], segments: int, content: str, padding: int
) -> Manifest:
    try:
        m = _canonical.loads(data)
    except _canonical.CanonicalError as e:
        raise LetterError(f"malformed manifest: {e.message}") from None
    if not isinstance(m, dict) or set(m) != {"v", "parts", "segments", "content", "padding"}:
        raise LetterError("malformed manifest")
    if (
        not is_int_in(m["v"], VERSION, VERSION)
        or not isinstance(m["parts"], list)
        or not 1 <= len(m["parts"]) <= MAX_PARTS
        or not is_int(m["segments"])
        or not is_int(m["padding"])
    ):
        raise LetterError("malformed manifest")
    if (m["segments"], m["content"], m["padding"]) != (segments, content, padding):
        raise LetterError("the manifest does not match the letter's segments")
    if len(m["parts"]) < len(parts):
        raise LetterError("the manifest does not list every part")
    out = []
    for i, p in enumerate(m["parts"]):
        state = parts[i] if i < len(parts) else _PartState()
        kind: PartKind = "body" if i == 0 else "attachment"
        keys = {"kind", "size", "hash"} | ({"name"} if i else set())
        if not isinstance(p, dict) or set(p) != keys or p["kind"] != kind:
            raise LetterError("malformed manifest: bad part entry")
        if not is_int(p["size"]) or (p["size"], p["hash"]) != (state.size, state.hash.hexdigest()):
            raise LetterError(f"the manifest does not match part {i}")
        name = p.get("name")
        if i and (not isinstance(name, str) or not name):
            raise LetterError("malformed manifest: an attachment has no name")
        out.append(Part(kind, name, state.size, p["hash"]))
    return Manifest(tuple(out), segments, content, padding)
