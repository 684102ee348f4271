"""Delivery receipts (SPEC.md section 2.6).

A receipt is a sealed letter of kind "receipt" from whoever opened a letter
back to its sender, in reply to it, so it inherits every check a letter
gets: signed segment by segment, bound to its envelope, addressed. Its body
is canonical JSON binding what was received: the letter and envelope ids,
the sender and the sequence number, the named recipient, the signer (and
the digest of its credential when an agent signed), the accepted custody
head, the time, the verdict, and the last sequence received from the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _canonical
from .._fields import is_hex64, is_int_in, is_rfc3339, read_object
from ..errors import LetterError
from .order import MAX_SEQ

KIND = "receipt"
VERSION = 1
FIELDS = frozenset({
    "v", "kind", "letter", "envelope", "sender", "seq", "recipient", "signer", "credential",
    "custody_head", "time", "complete", "custody", "last_received",
})  # fmt: skip


@dataclass(frozen=True)
class Receipt:
    letter: str  # the letter id received
    envelope: str
    sender: str  # fingerprints
    seq: int  # the letter's sequence number for the recipient
    recipient: str  # the recipient the letter named
    signer: str  # who opened it: the recipient, or its receiver
    credential: str | None  # the signer's credential id, if an agent signed
    custody_head: str | None  # the custody chain head accepted
    time: str
    complete: bool  # every segment and the manifest verified
    custody: tuple[str, ...]  # custody problems reported, if any
    last_received: int  # the last sequence received from the sender

    def encode(self) -> bytes:
        return _canonical.dumps(
            {
                "v": VERSION,
                "kind": KIND,
                "letter": self.letter,
                "envelope": self.envelope,
                "sender": self.sender,
                "seq": self.seq,
                "recipient": self.recipient,
                "signer": self.signer,
                "credential": self.credential,
                "custody_head": self.custody_head,
                "time": self.time,
                "complete": self.complete,
                "custody": list(self.custody),
                "last_received": self.last_received,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        r = read_object(data, "receipt", LetterError, FIELDS)
        if r["kind"] != KIND:
            raise LetterError("malformed receipt: unexpected fields")
        if not is_int_in(r["v"], VERSION, VERSION):
            raise LetterError("unsupported receipt version (this pouch reads v1)")
        hexes = [r[k] for k in ("letter", "envelope", "sender", "recipient", "signer")]
        optional = [r[k] for k in ("credential", "custody_head") if r[k] is not None]
        if not all(is_hex64(x) for x in hexes + optional):
            raise LetterError("malformed receipt: bad id")
        if not all(is_int_in(r[k], 0, MAX_SEQ) for k in ("seq", "last_received")):
            raise LetterError("malformed receipt: bad sequence number")
        custody = r["custody"]
        if (
            not isinstance(r["complete"], bool)
            or not is_rfc3339(r["time"])
            or not isinstance(custody, list)
            or not all(isinstance(x, str) and len(x) <= 500 for x in custody)
            or len(custody) > 100
        ):
            raise LetterError("malformed receipt")
        return cls(
            r["letter"], r["envelope"], r["sender"], r["seq"], r["recipient"], r["signer"],
            r["credential"], r["custody_head"], r["time"], r["complete"], tuple(custody),
            r["last_received"],
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _canonical.loads(self.encode())
        return out
