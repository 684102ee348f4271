"""The correspondence ledger's rules (SPEC.md section 5.3): which order
block a letter gets when it is sealed, and what a letter that arrives is,
given what the register holds. The register stores (_ledger_store.py);
this module decides.

Each sender numbers its letters to each recipient in a stream (one per
home; a restored home or a second device starts another). A letter that
arrives is, keyed on its letter id and its place (sender, stream, number):

- in order: the next number;
- a gap: a number past the next ("#4 has not arrived; #5 refers to it"),
  later filled by the missing letter;
- a replay: a letter id already recorded (reported, not an error);
- a fork (red): another letter at a place already taken, or a previous
  letter other than the one held there. Both are kept as evidence;
- an overlap (amber): a sender's new stream starting before letters its
  old stream sent (it lost state), healed by a later letter that continues
  from past them;
- an acknowledgment that contradicts what this home sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .. import _canonical
from .._kdf import hkdf_sha256
from ..errors import BehindError, FileError
from ..identity import Identity
from ..letter.order import Block, Mark, Position, first_numbers, missing_ranges
from .register import Register

PRIVATE_LABEL = b"pouch/register/private/v1"
# Missing numbers listed one by one, at most (the notes give every gap as
# a range): a letter may claim any number.
MAX_LISTED = 1000


# --- what reveals content, sealed to the owner ---------------------------------


def _private_key(identity: Identity) -> bytes:
    return hkdf_sha256(identity.signing.private_bytes_raw(), b"", PRIVATE_LABEL)


def seal_private(
    identity: Identity, letter_id: str, fields: Mapping[str, object], rand: Callable[[int], bytes]
) -> bytes:
    """Subjects and part names, as the register keeps them: ChaCha20-Poly1305
    under a key only the owner's identity gives, bound to the letter id."""
    nonce = rand(12)
    aead = ChaCha20Poly1305(_private_key(identity))
    return nonce + aead.encrypt(nonce, _canonical.dumps(fields), bytes.fromhex(letter_id))


def open_private(identity: Identity, letter_id: str, blob: bytes) -> dict[str, object]:
    try:
        plain = ChaCha20Poly1305(_private_key(identity)).decrypt(
            blob[:12], blob[12:], bytes.fromhex(letter_id)
        )
    except (InvalidTag, ValueError):
        raise FileError(
            f"the register's private record of letter {letter_id[:16]} does not open",
            "it was made by another identity, or damaged: run 'pouch db check'",
        ) from None
    value = _canonical.loads(plain)
    assert isinstance(value, dict)
    return value


# --- sealing -------------------------------------------------------------------


def in_order(reg: Register, sender: str, recipient: str, stream: str) -> Mark | None:
    """The last letter of a stream received with none missing before it:
    what an acknowledgment names."""
    top = reg.kept_max(sender, recipient, stream)
    if reg.kept_count(sender, recipient, stream, top + 1) != top:
        # a gap: the last number before the first one missing
        seqs = reg.kept_seqs(sender, recipient, stream)
        top = next((n for n, held in enumerate(seqs, 1) if held != n), len(seqs) + 1) - 1
    if top == 0:
        return None
    found = reg.kept_at(sender, recipient, stream, [top])
    return Mark(stream, top, found[0].letter) if found else None


def acknowledgment(reg: Register, me: str, them: str) -> Mark | None:
    """The last letter received from them in order, in their latest stream.

    While their latest stream continues an older one from a point before
    letters I hold of it (they lost state: an overlap), I acknowledge the
    older stream instead, so that they learn where it really ended and
    heal the overlap in their next letter."""
    stream = reg.latest_stream(them, me)
    if stream is None:
        return None
    latest = reg.kept_at(them, me, stream, [reg.kept_max(them, me, stream)])
    old = latest[0].continues if latest else None
    if old is not None and old.stream != stream:
        older = in_order(reg, them, me, old.stream)
        if older is not None and older.seq > old.seq:
            return older
    return in_order(reg, them, me, stream)


def blocks_for(reg: Register, me: str, recipients: Sequence[str], stream: str) -> dict[str, Block]:
    """The order block of a new letter to each recipient, its number
    reserved durably (the first step of the crash order).

    Refuses (BehindError) when a recipient acknowledges a letter of this
    stream that this register does not know it sent: it lost state, and
    would give out numbers that were used already."""
    previous = reg.previous_stream()
    blocks = {}
    for them in recipients:
        last = reg.kept_max(me, them, stream)
        claimed = reg.max_ack(them, me, stream)
        if claimed > last:
            raise BehindError(
                f"{them[:16]} acknowledges your letter #{claimed} of this stream, but this "
                f"register knows only up to #{last}: it lost state (restored from an old backup?)",
                "start a new stream with 'pouch restore'; your letters will say where the old "
                "one ended",
            )
        seq = reg.reserve(stream, them)
        before = reg.kept_at(me, them, stream, [seq - 1]) if seq > 1 else []
        if seq > 1 and not before:
            # Numbers left by a run that died are given out first, so the
            # one before is being sealed right now, by another pouch.
            raise FileError(
                f"letter #{seq - 1} to {them[:16]} is being sealed by another pouch command",
                "run this one again once that one is done",
            )
        prev = before[0].letter if before else None
        blocks[them] = Block(seq, prev, acknowledgment(reg, me, them), _continues(
            reg, me, them, previous))  # fmt: skip
    return blocks


def _continues(reg: Register, me: str, them: str, previous: str | None) -> Mark | None:
    """Where my previous stream to them ended, as far as I know: my own
    record of it, or further, if they acknowledged more (letters I sent
    after the backup I was restored from)."""
    if previous is None:
        return None
    top = reg.kept_max(me, them, previous)
    mine = reg.kept_at(me, them, previous, [top]) if top else []
    marks = [Mark(previous, top, mine[0].letter)] if mine else []
    acked = reg.best_ack(them, me, previous)
    marks += [acked] if acked else []
    return max(marks, key=lambda m: m.seq) if marks else None


# --- opening -------------------------------------------------------------------


# What a letter that arrives is: the next number; past a missing one; the
# missing one itself; one already recorded (again, or to complete a run that
# was interrupted); a fork of the sender's stream; my own letter (my copy);
# or one that carries no order block for me.
ArrivalKind = Literal[
    "in order", "gap", "fills a gap", "replay", "completion", "fork", "own", "unordered"
]


@dataclass
class Arrival:
    """What a letter that arrived is, in its sender's correspondence."""

    kind: ArrivalKind
    position: Position | None
    notes: list[str] = field(default_factory=list)  # warnings: gaps, overlaps, acknowledgments
    missing: list[int] = field(default_factory=list)
    forks: list[tuple[str, int]] = field(default_factory=list)  # (other letter, seq)


def classify(
    reg: Register,
    me: str,
    letter_id: str,
    sender: str,
    stream: str,
    block: Block | None,
    name: Callable[[str], str],
) -> Arrival:
    """Place a verified letter from sender (to me) in the ledger, without
    recording it. name(fingerprint) says who, in messages."""
    known = reg.letter(letter_id)
    if known is not None and known.state == "forked":
        # Kept as evidence, never released: refused every time it comes.
        return Arrival("fork", None, [
            f"FORK: this letter from {name(sender)} was found to fork their stream on "
            f"{known.recorded}; it is kept as evidence, never opened"
        ])  # fmt: skip
    if known is not None:
        kind: ArrivalKind = "replay" if known.published else "completion"
        return Arrival(kind, None, [f"already recorded on {known.recorded}"] if known.published
                       else [])  # fmt: skip
    if block is None:
        return Arrival("own" if sender == me else "unordered", None)
    who = name(sender)
    pos = Position.of(letter_id, sender, me, stream, block)
    near = reg.kept_at(sender, me, stream, [block.seq - 1, block.seq, block.seq + 1])
    by_seq = {p.seq: p for p in near}
    arrival = Arrival("in order", pos)
    other = by_seq.get(block.seq)
    if other is not None:
        arrival.forks.append((other.letter, block.seq))
    before = by_seq.get(block.seq - 1)
    if before is not None and block.prev != before.letter:
        arrival.forks.append((before.letter, block.seq - 1))
    after = by_seq.get(block.seq + 1)
    if after is not None and after.prev != letter_id:
        arrival.forks.append((after.letter, block.seq + 1))
    if arrival.forks:
        arrival.kind = "fork"
        arrival.notes.append(
            f"FORK: {who} has two different letters at #{arrival.forks[0][1]} of one stream; "
            "one of them is forged, or their state was cloned. Both are kept."
        )
        return arrival
    # Numbers run from 1 in every stream, to every recipient.
    gaps: list[tuple[int, int]] = []
    if reg.kept_count(sender, me, stream, block.seq) < block.seq - 1:
        gaps = missing_ranges(reg.kept_seqs(sender, me, stream, below=block.seq), block.seq - 1)
    if reg.kept_max(sender, me, stream) > block.seq:
        arrival.kind = "fills a gap"
    elif gaps:
        arrival.kind = "gap"
    arrival.missing = first_numbers(gaps, MAX_LISTED)
    for first, last in gaps[:10]:
        refers = " refers to it" if last == block.seq - 1 else " came after them"
        if first == last:
            refers = refers.replace("them", "it")
            arrival.notes.append(
                f"letter #{first} from {who} has not arrived; #{block.seq}{refers}"
            )
        else:
            arrival.notes.append(f"letters #{first} to #{last} from {who} have not arrived; "
                                 f"#{block.seq}{refers}")  # fmt: skip
    if len(gaps) > 10:
        arrival.notes.append(f"... and {len(gaps) - 10} more gaps in {who}'s letters")
    arrival.notes += _overlaps(reg, me, sender, stream, block, who)
    arrival.notes += _check_ack(reg, me, sender, block, who)
    return arrival


def _overlaps(
    reg: Register, me: str, sender: str, stream: str, block: Block, who: str
) -> list[str]:
    """Amber: letters of a sender's other stream past the point this
    stream continues from (it lost state). None once a letter continues
    from past them."""
    notes = []
    for other in reg.streams(sender, me):
        if other == stream:
            continue
        top = reg.kept_max(sender, me, other)
        continues = block.continues if block.continues and block.continues.stream == other else None
        since = continues.seq if continues else 0
        if top <= since:
            continue
        first = min(n for n in reg.kept_seqs(sender, me, other) if n > since)
        if continues is None:
            notes.append(
                f"OVERLAP: {who} writes in a new stream without saying it continues the one "
                f"whose letters #{first} to #{top} you hold (a second device, or lost state)"
            )
        else:
            notes.append(
                f"OVERLAP: {who}'s new stream continues from #{since} of their old one, but you "
                f"hold #{first} to #{top} of it too: they lost state after sending those. "
                "A later letter that continues from past them heals this."
            )
    return notes


def _check_ack(reg: Register, me: str, sender: str, block: Block, who: str) -> list[str]:
    """The sender's acknowledgment must name a letter this home sent them."""
    ack = block.ack
    if ack is None:
        return []
    found = reg.kept_at(me, sender, ack.stream, [ack.seq])
    if not found and ack.stream == reg.previous_stream():
        return []  # a letter sent after the backup this home was restored from
    if not found:
        return [f"ACKNOWLEDGMENT: {who} says they received your letter #{ack.seq}, which you "
                "never sent them"]  # fmt: skip
    if ack.letter is not None and ack.letter not in {p.letter for p in found}:
        return [f"ACKNOWLEDGMENT: {who} says your letter #{ack.seq} was {ack.letter[:16]}; you "
                f"sent {found[0].letter[:16]}"]  # fmt: skip
    return []


# --- db check --------------------------------------------------------------------


def check(reg: Register) -> list[str]:
    """pouch's own checks of the ledger, after SQLite's: every letter's
    positions, every stream's sequence and chain of previous letters,
    reservations, states, forks recorded on both sides."""
    problems = reg.integrity()
    letters = {row.id: row for row in reg.all_letters()}
    places: dict[tuple[str, str, str, int], list[Position]] = {}
    for p in reg.all_positions():
        if p.letter not in letters:
            problems.append(f"position of unknown letter {p.letter[:16]}")
            continue
        places.setdefault((p.sender, p.recipient, p.stream, p.seq), []).append(p)
    forked = {(a, b) for a, b, _, _ in reg.forks()}
    forked |= {(b, a) for a, b in forked}
    for (sender, recipient, stream, seq), ps in places.items():
        ids = {p.letter for p in ps}
        if len(ids) > 1 and not all((a, b) in forked for a in ids for b in ids if a != b):
            problems.append(f"two letters at #{seq} of stream {stream[:8]} from {sender[:16]} "
                            "with no fork recorded")  # fmt: skip
        for p in ps:
            if (p.seq == 1) != (p.prev is None):
                problems.append(f"letter {p.letter[:16]}: #{p.seq} with a wrong previous link")
            before = places.get((sender, recipient, stream, seq - 1), [])
            if p.prev is not None and before and p.prev not in {b.letter for b in before}:
                if (p.letter, before[0].letter) not in forked:
                    problems.append(f"letter {p.letter[:16]} names another previous letter than "
                                    "the one recorded, with no fork recorded")  # fmt: skip
    by_letter: dict[str, list[Position]] = {}
    for ps in places.values():
        for p in ps:
            by_letter.setdefault(p.letter, []).append(p)
    for row in letters.values():
        mine = by_letter.get(row.id, [])
        if row.direction == "sent" and row.kind in ("letter", "receipt"):
            if {p.recipient for p in mine} != set(row.recipients):
                problems.append(f"sent letter {row.id[:16]} lacks the position of a recipient")
            if row.state in ("received", "forked"):
                problems.append(f"sent letter {row.id[:16]} is in state {row.state!r}")
        if row.direction == "received" and row.state not in ("received", "answered", "forked"):
            problems.append(f"received letter {row.id[:16]} is in state {row.state!r}")
    for stream, recipient, seq, letter in reg.reservations():
        if letter is None:
            continue  # reserved by a run that died: given out again
        owner = letters.get(letter)
        held = places.get((owner.sender, recipient, stream, seq), []) if owner else []
        if letter not in {p.letter for p in held}:
            problems.append(f"reservation #{seq} to {recipient[:16]} does not match its letter")
    return problems
