"""The correspondence ledger's rules (SPEC.md section 5.3): which order
block a letter gets when it is sealed, and what a letter that arrives is,
given what the register holds. The register (pouch.register) stores; this
module decides.

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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import _canonical
from .age._crypto import hkdf_sha256
from .errors import BehindError, FileError
from .identity import Identity
from .order import Block, Mark
from .register import Position, Register

PRIVATE_LABEL = b"pouch/register/private/v1"


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


def in_order(positions: Sequence[Position]) -> Position | None:
    """The last of positions (one stream) received with none missing before
    it: what an acknowledgment names."""
    last = None
    expected = positions[0].seq if positions else 1
    for p in sorted(positions, key=lambda p: p.seq):
        if p.seq > expected:
            break
        if p.seq == expected:
            last, expected = p, expected + 1
    return last


def latest_stream(reg: Register, sender: str, recipient: str) -> str | None:
    """The stream of the letter from sender to recipient recorded last."""
    letters = [reg.letter(p.letter) for p in reg.positions(sender, recipient)]
    known = [row for row in letters if row is not None and row.state != "forked"]
    return max(known, key=lambda row: (row.recorded, row.date)).stream if known else None


def acknowledgment(reg: Register, me: str, them: str) -> Mark | None:
    """The last letter received from them in order, in their latest stream.

    While their latest stream continues an older one from a point before
    letters I hold of it (they lost state: an overlap), I acknowledge the
    older stream instead, so that they learn where it really ended and
    heal the overlap in their next letter."""
    stream = latest_stream(reg, them, me)
    if stream is None:
        return None
    held = [p for p in reg.positions(them, me, stream) if _kept(reg, p)]
    latest = max(held, key=lambda p: p.seq, default=None)
    old = latest.continues if latest else None
    if old is not None and old.stream != stream:
        older = in_order([p for p in reg.positions(them, me, old.stream) if _kept(reg, p)])
        if older is not None and older.seq > old.seq:
            return Mark(old.stream, older.seq, older.letter)
    last = in_order(held)
    return Mark(stream, last.seq, last.letter) if last else None


def _kept(reg: Register, p: Position) -> bool:
    row = reg.letter(p.letter)
    return row is not None and row.state != "forked"


def _acks_of(reg: Register, me: str, them: str, stream: str) -> list[Mark]:
    """What they acknowledged of my stream, in every letter they sent me."""
    return [p.ack for p in reg.positions(them, me) if p.ack is not None and p.ack.stream == stream]


def blocks_for(reg: Register, me: str, recipients: Sequence[str], stream: str) -> dict[str, Block]:
    """The order block of a new letter to each recipient, its number
    reserved durably (the first step of the crash order).

    Refuses (BehindError) when a recipient acknowledges a letter of this
    stream that this register does not know it sent: it lost state, and
    would give out numbers that were used already."""
    previous = reg.previous_stream()
    blocks = {}
    for them in recipients:
        sent = reg.positions(me, them, stream)
        last = max((p.seq for p in sent), default=0)
        claimed = max((m.seq for m in _acks_of(reg, me, them, stream)), default=0)
        if claimed > last:
            raise BehindError(
                f"{them[:16]} acknowledges your letter #{claimed} of this stream, but this "
                f"register knows only up to #{last}: it lost state (restored from an old backup?)",
                "start a new stream with 'pouch restore'; your letters will say where the old "
                "one ended",
            )
        seq = reg.reserve(stream, them)
        prev = next((p.letter for p in sent if p.seq == seq - 1), None)
        if seq > 1 and prev is None:
            raise FileError(
                f"register error: letter #{seq - 1} to {them[:16]} is not recorded",
                "run 'pouch db check'",
            )
        blocks[them] = Block(seq, prev, acknowledgment(reg, me, them), _continues(
            reg, me, them, previous))  # fmt: skip
    return blocks


def _continues(reg: Register, me: str, them: str, previous: str | None) -> Mark | None:
    """Where my previous stream to them ended, as far as I know: my own
    record of it, or further, if they acknowledged more (letters I sent
    after the backup I was restored from)."""
    if previous is None:
        return None
    marks = [Mark(previous, p.seq, p.letter) for p in reg.positions(me, them, previous)]
    marks += _acks_of(reg, me, them, previous)
    return max(marks, key=lambda m: m.seq) if marks else None


# --- opening -------------------------------------------------------------------


@dataclass
class Arrival:
    """What a letter that arrived is, in its sender's correspondence."""

    kind: str  # in order | gap | fills a gap | replay | completion | fork | own | unordered
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
    if known is not None:
        kind = "replay" if known.published else "completion"
        return Arrival(kind, None, [f"already recorded on {known.recorded}"] if known.published
                       else [])  # fmt: skip
    if block is None:
        return Arrival("own" if sender == me else "unordered", None)
    who = name(sender)
    pos = Position(letter_id, sender, me, stream, block.seq, block.prev, block.ack,
                   block.continues, None)  # fmt: skip
    held = [p for p in reg.positions(sender, me, stream) if _kept(reg, p)]
    by_seq = {p.seq: p for p in held}
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
    missing_before = [n for n in range(1, block.seq) if n not in by_seq]
    if any(n > block.seq for n in by_seq):
        arrival.kind = "fills a gap"
    elif missing_before:
        arrival.kind = "gap"
    arrival.missing = missing_before
    for n in missing_before:
        refers = " refers to it" if n == block.seq - 1 else " came after it"
        arrival.notes.append(f"letter #{n} from {who} has not arrived; #{block.seq}{refers}")
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
    for other in {p.stream for p in reg.positions(sender, me)} - {stream}:
        held = [p.seq for p in reg.positions(sender, me, other)]
        since = block.continues.seq if block.continues and block.continues.stream == other else 0
        past = sorted(n for n in held if n > since)
        if past and not (block.continues and block.continues.stream == other):
            notes.append(
                f"OVERLAP: {who} writes in a new stream without saying it continues the one "
                f"whose letters #{past[0]} to #{past[-1]} you hold (a second device, or lost "
                "state)"
            )
        elif past:
            notes.append(
                f"OVERLAP: {who}'s new stream continues from #{since} of their old one, but you "
                f"hold #{past[0]} to #{past[-1]} of it too: they lost state after sending those. "
                "A later letter that continues from past them heals this."
            )
    return notes


def _check_ack(reg: Register, me: str, sender: str, block: Block, who: str) -> list[str]:
    """The sender's acknowledgment must name a letter this home sent them."""
    ack = block.ack
    if ack is None:
        return []
    mine = {(p.stream, p.seq): p.letter for p in reg.positions(me, sender)}
    sent = mine.get((ack.stream, ack.seq))
    if sent is None and ack.stream == reg.previous_stream():
        return []  # a letter sent after the backup this home was restored from
    if sent is None:
        return [f"ACKNOWLEDGMENT: {who} says they received your letter #{ack.seq}, which you "
                "never sent them"]  # fmt: skip
    if ack.letter is not None and ack.letter != sent:
        return [f"ACKNOWLEDGMENT: {who} says your letter #{ack.seq} was {ack.letter[:16]}; you "
                f"sent {sent[:16]}"]  # fmt: skip
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
    for row in letters.values():
        mine = [p for ps in places.values() for p in ps if p.letter == row.id]
        if row.direction == "sent" and row.kind in ("letter", "receipt"):
            if {p.recipient for p in mine} != set(row.recipients):
                problems.append(f"sent letter {row.id[:16]} lacks the position of a recipient")
            if row.state in ("received", "forked"):
                problems.append(f"sent letter {row.id[:16]} is in state {row.state!r}")
        if row.direction == "received" and row.state not in ("received", "answered", "forked"):
            problems.append(f"received letter {row.id[:16]} is in state {row.state!r}")
    for stream, recipient, seq, letter in reg.reservations():
        if letter is not None and letter not in letters:
            problems.append(f"reservation #{seq} to {recipient[:16]} names an unknown letter")
        if letter is not None:
            ps = places.get((letters[letter].sender, recipient, stream, seq), []) if letter in \
                letters else []  # fmt: skip
            if letter not in {p.letter for p in ps}:
                problems.append(f"reservation #{seq} to {recipient[:16]} does not match its letter")
    return problems
