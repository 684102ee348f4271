"""The signed letter: the plaintext inside the age envelope (SPEC.md section 2).

    letter   = "pouch-letter/v1\\n" || uint32 n || header (n bytes, canonical JSON)
               || segment* || final segment
    segment  = type (1) || part (uint32) || length (uint32) || data || signature (64)

Every segment is signed by the sender, the way saltpack's signcryption signs
its chunks: the signature covers a domain string, the header's hash, the
segment's index, whether it is the final one, and the segment's BLAKE3. The
header names the sender, every recipient, and the BLAKE3 of the age header
and payload nonce, so a letter cannot be moved into another envelope, nor
forwarded so that it looks addressed to someone else. The final segment
carries the manifest; nothing may follow it.

Nothing here decrypts or writes files: the writer emits bytes to a callable
and the reader yields verified data, so that the caller decides where the
plaintext goes, and when (only after the final segment verified).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import _canonical
from ._canonical import is_int
from ._io import read_full
from ._pipeline import BufferRing, Worker
from .errors import FileError, LetterError, VerificationError
from .identity import fingerprint, is_rfc3339
from .order import SEALED_SIZE
from .statements import b64, unb64

VERSION = 1
PREAMBLE = b"pouch-letter/v1\n"
SEGMENT_SIZE = 1 << 20
MAX_HEADER = 64 << 10
MAX_MANIFEST = 1 << 20
SIGNATURE_SIZE = 64
SEGMENT_HEAD = struct.Struct(">BII")
LENGTH = struct.Struct(">I")
INDEX = struct.Struct(">QB")

DATA, PADDING, FINAL = 1, 2, 3

HEADER_LABEL = b"pouch/letter/header/v1\x00"
SEGMENT_LABEL = b"pouch/letter/segment/v1\x00"
SIGNATURE_LABEL = b"pouch/letter/signature/v1\x00"
ID_LABEL = b"pouch/letter/id/v1\x00"
CONTENT_LABEL = b"pouch/letter/content/v1\x00"
PART_LABEL = b"pouch/letter/part/v1\x00"
ENVELOPE_LABEL = b"pouch/letter/envelope/v1\x00"

KEMS = ("mlkem768x25519", "x25519")
# A letter says nothing of its kind; a receipt (issue 4) says "receipt".
KINDS = ("letter", "receipt")
MAX_RECIPIENTS = 1000
# Parts are files in the reader's folder, each open until the letter verified.
MAX_PARTS = 1000
MAX_SUBJECT = 1000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


def envelope_binding(age_header: bytes, nonce: bytes) -> bytes:
    """What the letter header signs about its envelope: the age header
    (its stanzas and MAC) and the payload nonce, which fix the ciphertext."""
    return blake3.blake3(ENVELOPE_LABEL + age_header + nonce).digest()


@dataclass(frozen=True)
class LetterHeader:
    sender: bytes
    recipients: tuple[bytes, ...]
    date: str
    subject: str
    in_reply_to: str | None
    stream: str
    order_key: bytes  # the ephemeral X25519 key the order blocks are sealed with
    blocks: dict[str, bytes]  # each recipient's sealed order block (order.py), by fingerprint
    kem: str
    padding: bool
    decoys: int
    envelope: bytes
    kind: str = "letter"  # or "receipt" (SPEC.md 2.1); only a receipt says so

    def encode(self) -> bytes:
        kind = {} if self.kind == "letter" else {"kind": self.kind}
        return _canonical.dumps(
            {
                **kind,
                "v": VERSION,
                "alg": {"sig": "ed25519", "hash": "blake3", "age": self.kem},
                "from": b64(self.sender),
                "to": [b64(r) for r in self.recipients],
                "date": self.date,
                "subject": self.subject,
                "in_reply_to": self.in_reply_to,
                "stream": self.stream,
                "order": {
                    "epk": b64(self.order_key),
                    "blocks": {fp: b64(block) for fp, block in self.blocks.items()},
                },
                "padding": "padme" if self.padding else "none",
                "decoys": self.decoys,
                "envelope": self.envelope.hex(),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> LetterHeader:
        try:
            h = _canonical.loads(data)
        except _canonical.CanonicalError as e:
            raise LetterError(f"malformed letter header: {e.message}") from None
        fields = {"v", "alg", "from", "to", "date", "subject", "in_reply_to", "stream", "order",
                  "padding", "decoys", "envelope"}  # fmt: skip
        if not isinstance(h, dict) or set(h) - {"kind"} != fields:
            raise LetterError("malformed letter header: unexpected fields")
        kind = h.get("kind", "letter")
        if kind not in KINDS or ("kind" in h and kind == "letter"):
            raise LetterError("malformed letter header: bad kind")
        if not is_int(h["v"]) or h["v"] != VERSION:
            raise LetterError(
                f"letter format v{h['v']!r:.20} is not supported (this pouch reads v1)"
            )
        alg = h["alg"]
        if (
            not isinstance(alg, dict)
            or set(alg) != {"sig", "hash", "age"}
            or (alg["sig"], alg["hash"]) != ("ed25519", "blake3")
            or alg["age"] not in KEMS
        ):
            raise LetterError("letter uses algorithms this pouch does not know")
        to = h["to"]
        if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
            raise LetterError("malformed letter header: bad recipient list")
        recipients = tuple(_key(k, "recipient") for k in to)
        if len(set(recipients)) != len(recipients):
            raise LetterError("malformed letter header: a recipient is named twice")
        order_key, blocks = _order(h["order"], {fingerprint(r) for r in recipients})
        reply = h["in_reply_to"]
        if reply is not None and not (isinstance(reply, str) and _HEX64.fullmatch(reply)):
            raise LetterError("malformed letter header: bad in-reply-to")
        if not isinstance(h["stream"], str) or not _HEX32.fullmatch(h["stream"]):
            raise LetterError("malformed letter header: bad stream id")
        subject, date = h["subject"], h["date"]
        if not isinstance(subject, str) or len(subject) > MAX_SUBJECT:
            raise LetterError("malformed letter header: bad subject")
        if not isinstance(date, str) or not is_rfc3339(date):
            raise LetterError("malformed letter header: bad date")
        if h["padding"] not in ("padme", "none") or not (
            is_int(h["decoys"]) and 0 <= h["decoys"] <= MAX_RECIPIENTS
        ):
            raise LetterError("malformed letter header: bad padding or decoys")
        if not isinstance(h["envelope"], str) or not _HEX64.fullmatch(h["envelope"]):
            raise LetterError("malformed letter header: bad envelope binding")
        return cls(
            sender=_key(h["from"], "sender"),
            recipients=recipients,
            date=date,
            subject=subject,
            in_reply_to=reply,
            stream=h["stream"],
            order_key=order_key,
            blocks=blocks,
            kem=alg["age"],
            padding=h["padding"] == "padme",
            decoys=h["decoys"],
            envelope=bytes.fromhex(h["envelope"]),
            kind=kind,
        )


def _order(value: object, recipients: set[str]) -> tuple[bytes, dict[str, bytes]]:
    """The order field: one sealed block per recipient, keyed by its
    fingerprint (SPEC.md 2.7)."""
    if not isinstance(value, dict) or set(value) != {"epk", "blocks"}:
        raise LetterError("malformed letter header: bad order field")
    epk, blocks = _key(value["epk"], "order"), value["blocks"]
    if not isinstance(blocks, dict) or set(blocks) != recipients:
        raise LetterError("malformed letter header: not one order block per recipient")
    sealed = {}
    for fp, block in blocks.items():
        try:
            sealed[fp] = unb64(block, "order block")
        except VerificationError:
            sealed[fp] = b""
        if len(sealed[fp]) != SEALED_SIZE:
            raise LetterError("malformed letter header: bad order block")
    return epk, sealed


def _key(value: object, what: str) -> bytes:
    try:
        key = unb64(value, what)
    except VerificationError:
        key = b""
    if len(key) != 32:
        raise LetterError(f"malformed letter header: bad {what} key")
    return key


@dataclass(frozen=True)
class Part:
    kind: str  # "body" or "attachment"
    name: str | None
    size: int
    hash: str

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "size": self.size, "hash": self.hash}
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class Manifest:
    parts: tuple[Part, ...]
    segments: int
    content: str
    padding: int

    def encode(self) -> bytes:
        return _canonical.dumps(
            {
                "v": VERSION,
                "parts": [p.as_json() for p in self.parts],
                "segments": self.segments,
                "content": self.content,
                "padding": self.padding,
            }
        )


def segment_hash(head: bytes, data: bytes | memoryview) -> bytes:
    h = blake3.blake3(SEGMENT_LABEL)
    h.update(head)
    h.update(data)
    return h.digest()


def _signed_message(header_hash: bytes, index: int, final: bool, seg_hash: bytes) -> bytes:
    return SIGNATURE_LABEL + header_hash + INDEX.pack(index, 1 if final else 0) + seg_hash


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


def padme(length: int) -> int:
    """Padmé (Nikitin et al., PETS 2019): the bucket a length is padded to;
    it leaks O(log log L) bits and costs at most 12% more."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


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
        return self._signer.sign(_signed_message(self._header_hash, index, final, seg_hash))

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
            self._key.verify(signature, _signed_message(self._header_hash, index, final, seg_hash))
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
        not is_int(m["v"])
        or m["v"] != VERSION
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
        kind = "body" if i == 0 else "attachment"
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
