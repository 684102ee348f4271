"""The signed letter's wire format (SPEC.md sections 2.1 to 2.3).

    letter   = "pouch-letter/v1\\n" || uint32 n || header (n bytes, canonical JSON)
               || segment* || final segment
    segment  = type (1) || part (uint32) || length (uint32) || data || signature (64)

Every segment is signed by the sender, the way saltpack's signcryption signs
its chunks: the signature covers a domain string, the header's hash, the
segment's index, whether it is the final one, and the segment's BLAKE3. The
header names the sender, every recipient, and the BLAKE3 of the age header
and payload nonce, so a letter cannot be moved into another envelope, nor
forwarded so that it looks addressed to someone else. The final segment
carries the manifest; nothing may follow it. _segments.py writes and reads
the segments; this module holds what they are made of.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Literal, get_args

import blake3

from .. import _canonical
from .._fields import (
    b64,
    is_hex64,
    is_int_in,
    is_rfc3339,
    is_stream_id,
    read_object,
    unb64,
)
from ..errors import LetterError
from ..identity import fingerprint
from .order import SEALED_SIZE

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

# The age recipients a letter is sealed to: post-quantum, or classic.
Kem = Literal["mlkem768x25519", "x25519"]
PQ: Kem = "mlkem768x25519"
CLASSIC: Kem = "x25519"
# A letter says nothing of its kind; a receipt (SPEC.md 2.6) says "receipt".
LetterKind = Literal["letter", "receipt"]
PartKind = Literal["body", "attachment"]
MAX_RECIPIENTS = 1000
# Parts are files in the reader's folder, each open until the letter verified.
MAX_PARTS = 1000
MAX_SUBJECT = 1000
# A segment's hash, as workers hand them back.
HASH_SIZE = 32


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
    kem: Kem
    padding: bool
    decoys: int
    envelope: bytes
    kind: LetterKind = "letter"  # only a receipt says what it is (SPEC.md 2.1)

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
        h = read_object(data, "letter header", LetterError, _HEADER_FIELDS, {"kind"})
        kind = h.get("kind", "letter")
        if kind not in get_args(LetterKind) or ("kind" in h and kind == "letter"):
            raise LetterError("malformed letter header: bad kind")
        if not is_int_in(h["v"], VERSION, VERSION):
            raise LetterError(
                f"letter format v{h['v']!r:.20} is not supported (this pouch reads v1)"
            )
        alg = h["alg"]
        if (
            not isinstance(alg, dict)
            or set(alg) != {"sig", "hash", "age"}
            or (alg["sig"], alg["hash"]) != ("ed25519", "blake3")
            or alg["age"] not in get_args(Kem)
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
        if reply is not None and not is_hex64(reply):
            raise LetterError("malformed letter header: bad in-reply-to")
        if not is_stream_id(h["stream"]):
            raise LetterError("malformed letter header: bad stream id")
        subject, date = h["subject"], h["date"]
        if not isinstance(subject, str) or len(subject) > MAX_SUBJECT:
            raise LetterError("malformed letter header: bad subject")
        if not is_rfc3339(date):
            raise LetterError("malformed letter header: bad date")
        if h["padding"] not in ("padme", "none") or not is_int_in(h["decoys"], 0, MAX_RECIPIENTS):
            raise LetterError("malformed letter header: bad padding or decoys")
        if not is_hex64(h["envelope"]):
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


_HEADER_FIELDS = frozenset({"v", "alg", "from", "to", "date", "subject", "in_reply_to", "stream",
                            "order", "padding", "decoys", "envelope"})  # fmt: skip


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
        sealed[fp] = _bytes(block, "order block", SEALED_SIZE, "bad order block")
    return epk, sealed


def _key(value: object, what: str) -> bytes:
    return _bytes(value, what, 32, f"bad {what} key")


def _bytes(value: object, what: str, size: int, bad: str) -> bytes:
    """size bytes in canonical base64, or "malformed letter header: {bad}"."""
    try:
        data = unb64(value, what, LetterError)
    except LetterError:
        data = b""
    if len(data) != size:
        raise LetterError(f"malformed letter header: {bad}")
    return data


@dataclass(frozen=True)
class Part:
    kind: PartKind
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


def signed_message(header_hash: bytes, index: int, final: bool, seg_hash: bytes) -> bytes:
    return SIGNATURE_LABEL + header_hash + INDEX.pack(index, 1 if final else 0) + seg_hash


def padme(length: int) -> int:
    """Padmé (Nikitin et al., PETS 2019): the bucket a length is padded to;
    it leaks O(log log L) bits and costs at most 12% more."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask
