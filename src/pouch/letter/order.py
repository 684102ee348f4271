"""Order blocks: where a letter stands in its sender's correspondence with
each recipient (SPEC.md section 2.7; the ledger's rules over them are
SPEC.md 5.3, in pouch.home.ledger).

For each recipient the signed letter header carries a block: the letter's
sequence number in the sender's stream to that recipient, the sender's
previous letter to them, the last letter the sender received from them
(an implicit acknowledgment), and, for a stream that continues another
(after a restore, or on a second device), where that one ended.

A co-recipient must not learn another pair's block (how many letters the
sender wrote to the others, and what it heard back), so each block is
sealed to its recipient alone, as age seals a file key: an ephemeral
X25519 key per letter, HKDF, ChaCha20-Poly1305. The header signature makes
the blocks authentic; the seal only hides them. A recipient may disclose
its block key (a transcript does) and anyone can then read that block and
only that one: the key is committed to, so it cannot be swapped for one
that opens the block to something else.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .. import _canonical
from .._fields import is_hex64, is_int_in, is_stream_id, read_object
from .._kdf import hkdf_sha256
from ..errors import LetterError

ORDER_LABEL = b"pouch/letter/order/v1"
COMMIT_LABEL = b"pouch/letter/order/commit/v1\x00"
_ZERO_NONCE = bytes(12)
COMMIT_SIZE = 32
# A block's plaintext, padded with zero bytes (canonical JSON has none): the
# largest block, with every field at its largest, is under 400 bytes.
PADDED = 512
SEALED_SIZE = COMMIT_SIZE + PADDED + 16
MAX_SEQ = 2**53 - 1  # the largest integer canonical JSON carries exactly


@dataclass(frozen=True)
class Mark:
    """A letter in a stream: the stream id, its sequence number there, and
    its letter id (None when only the number is known)."""

    stream: str
    seq: int
    letter: str | None

    def encode(self) -> dict[str, Any]:
        return {"stream": self.stream, "seq": self.seq, "letter": self.letter}

    @classmethod
    def decode(cls, value: object, what: str) -> Mark | None:
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) != {"stream", "seq", "letter"}:
            raise LetterError(f"malformed order block: bad {what}")
        stream, seq, letter = value["stream"], value["seq"], value["letter"]
        if not is_stream_id(stream) or not _is_seq(seq) or not (letter is None or is_hex64(letter)):
            raise LetterError(f"malformed order block: bad {what}")
        return cls(stream, seq, letter)


@dataclass(frozen=True)
class Block:
    seq: int  # this letter's number in the sender's stream to this recipient, from 1
    prev: str | None  # the sender's previous letter to them in this stream (None: seq 1)
    ack: Mark | None  # the last letter the sender received from them, in order
    continues: Mark | None  # where the stream this one continues ended, to them

    def encode(self) -> bytes:
        return _canonical.dumps(
            {
                "seq": self.seq,
                "prev": self.prev,
                "ack": self.ack.encode() if self.ack else None,
                "continues": self.continues.encode() if self.continues else None,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Block:
        b = read_object(data, "order block", LetterError, {"seq", "prev", "ack", "continues"})
        seq, prev = b["seq"], b["prev"]
        if not _is_seq(seq):
            raise LetterError("malformed order block: bad sequence number")
        if not (prev is None or is_hex64(prev)) or (seq == 1) != (prev is None):
            raise LetterError("malformed order block: only the first letter has no previous one")
        return cls(seq, prev, Mark.decode(b["ack"], "acknowledgment"),
                   Mark.decode(b["continues"], "continuation"))  # fmt: skip


@dataclass(frozen=True)
class Position:
    """Where a letter stands in its sender's stream to one recipient: its
    order block, placed (the register keeps these; transcripts check them)."""

    letter: str
    sender: str  # fingerprints
    recipient: str
    stream: str
    seq: int
    prev: str | None
    ack: Mark | None
    continues: Mark | None
    block_key: bytes | None = None  # the block's key, to disclose it in a transcript

    @classmethod
    def of(
        cls, letter: str, sender: str, recipient: str, stream: str, block: Block,
        key: bytes | None = None,
    ) -> Position:  # fmt: skip
        return cls(letter, sender, recipient, stream, block.seq, block.prev, block.ack,
                   block.continues, key)  # fmt: skip


def missing_ranges(held: Iterable[int], upto: int) -> list[tuple[int, int]]:
    """The numbers from 1 to upto that are not held, as (first, last) ranges:
    work in how many are held, not in how large a number a letter claims
    (anyone can write #10**15)."""
    ranges, expected = [], 1
    for n in sorted(set(held)):
        if n > upto:
            break
        if n > expected:
            ranges.append((expected, n - 1))
        expected = max(expected, n + 1)
    if expected <= upto:
        ranges.append((expected, upto))
    return ranges


def first_numbers(ranges: Sequence[tuple[int, int]], limit: int) -> list[int]:
    """The first `limit` numbers of ranges, one by one."""
    out: list[int] = []
    for first, last in ranges:
        out += range(first, min(last, first + limit - len(out) - 1) + 1)
        if len(out) >= limit:
            break
    return out


def first(recipients: Iterable[str]) -> dict[str, Block]:
    """The blocks of a first letter to each of recipients (fingerprints):
    for a caller without a register (a test, a vector)."""
    return {fp: Block(1, None, None, None) for fp in recipients}


def _is_seq(value: object) -> bool:
    return is_int_in(value, 1, MAX_SEQ)


def _key(shared: bytes, epk: bytes, recipient_x25519: bytes) -> bytes:
    return hkdf_sha256(shared, epk + recipient_x25519, ORDER_LABEL)


def _commit(key: bytes) -> bytes:
    return blake3.blake3(COMMIT_LABEL + key).digest()


def seal_blocks(
    blocks: Mapping[str, tuple[bytes, Block]],
    sender: bytes,
    rand: Callable[[int], bytes] = os.urandom,
) -> tuple[bytes, dict[str, bytes], dict[str, bytes]]:
    """Seal each block to its recipient. blocks maps a recipient's
    fingerprint to its X25519 public key and its block. Returns the
    ephemeral public key, the sealed blocks and the block keys (the sender
    keeps these in its register, to disclose them in a transcript)."""
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(rand(32))
    epk = ephemeral.public_key().public_bytes_raw()
    sealed, keys = {}, {}
    for fp, (public, block) in blocks.items():
        try:
            shared = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(public))
        except ValueError:
            raise LetterError(f"the card of {fp[:16]} has an unusable X25519 key") from None
        key = _key(shared, epk, public)
        keys[fp] = key
        sealed[fp] = _commit(key) + ChaCha20Poly1305(key).encrypt(
            _ZERO_NONCE, _pad(block.encode()), _aad(sender, fp)
        )
    return epk, sealed, keys


def block_key(exchange: Callable[[bytes], bytes], epk: bytes, my_x25519: bytes) -> bytes:
    """The key of my block: exchange(epk) is X25519 with my secret key."""
    try:
        shared = exchange(epk)
    except ValueError:
        raise LetterError("malformed order block: a low-order ephemeral key") from None
    return _key(shared, epk, my_x25519)


def open_block(key: bytes, sealed: bytes, sender: bytes, recipient: str) -> Block:
    """Open a recipient's block with its key (its own, or one disclosed)."""
    if len(sealed) < COMMIT_SIZE + 16 or not hmac.compare_digest(
        sealed[:COMMIT_SIZE], _commit(key)
    ):
        raise LetterError("the order block does not open with this key")
    try:
        plain = ChaCha20Poly1305(key).decrypt(
            _ZERO_NONCE, sealed[COMMIT_SIZE:], _aad(sender, recipient)
        )
    except InvalidTag:
        raise LetterError("the order block does not open with this key") from None
    return Block.decode(_unpad(plain))


def _pad(plain: bytes) -> bytes:
    # Every block is the same size: its length would tell a co-recipient
    # whether there is an acknowledgment, and how many digits its numbers have.
    if len(plain) > PADDED:
        raise LetterError("an order block is too large")  # numbers are at most 2**53
    return plain + bytes(PADDED - len(plain))


def _unpad(plain: bytes) -> bytes:
    body = plain.rstrip(b"\x00")
    if len(plain) != PADDED or b"\x00" in body:
        raise LetterError("malformed order block: bad padding")
    return body


def _aad(sender: bytes, recipient: str) -> bytes:
    # Binds a block to its pair: it cannot be moved to another recipient's
    # entry, or into a letter from someone else.
    return ORDER_LABEL + b"\x00" + sender + bytes.fromhex(recipient)
