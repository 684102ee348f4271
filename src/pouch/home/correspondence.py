"""The correspondence a home keeps (SPEC.md sections 5.3 and 6): the
letters as a timeline and as threads, with missing letters and forks; the
register checked; a transcript exported for a third party.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from .. import container
from .._fields import rfc3339
from .._io import atomic_output
from ..errors import FileError
from ..letter import LetterKind, disclose, new_stream_id
from ..letter.order import first_numbers, missing_ranges
from ._ledger_store import Direction, LetterRow, State
from .folder import Home, archived_intact
from .ledger import MAX_LISTED, open_private
from .ledger import check as check_ledger
from .register import Register

if TYPE_CHECKING:
    from .post import Post


class LetterView(NamedTuple):
    """A letter in the register, as a person reads the ledger."""

    id: str
    envelope: str
    direction: Direction
    kind: LetterKind
    sender: str  # fingerprints
    recipients: tuple[str, ...]
    seq: int | None  # its number: to me, if received; to the recipient shown, if sent
    stream: str
    date: str
    subject: str
    attachments: tuple[str, ...]
    in_reply_to: str | None
    state: State
    written: bool  # its output was named (a seal that died before is not)


class Missing(NamedTuple):
    sender: str
    seq: int
    stream: str


class Fork(NamedTuple):
    letter: str
    other: str
    seq: int
    found: str


class Ledger(NamedTuple):
    letters: list[LetterView]
    missing: list[Missing]
    forks: list[Fork]


class Thread(NamedTuple):
    letters: list[tuple[int, LetterView]]  # (depth, letter), in reading order
    chosen: str  # the letter asked for


def ledger(post: Post, name: str | None = None) -> Ledger:
    with post.home.register() as reg:
        them = reg.find(name).fingerprint if name else None
        me = post.me
        rows = [
            r for r in reg.all_letters()
            if them is None or r.sender == them or (r.sender == me and them in r.recipients)
        ]  # fmt: skip
        letters = _views(post, reg, rows, them)
        missing = _missing(reg, me, them)
        ids = {r.id for r in rows}
        forks = [Fork(*f) for f in reg.forks() if f[0] in ids or f[1] in ids]
    return Ledger(letters, missing, forks)


def thread(post: Post, letter: str) -> Thread:
    with post.home.register() as reg:
        root = asked = reg.find_letter(letter)
        rows = reg.all_letters()
        by_id = {r.id: r for r in rows}
        seen = {root.id}
        while root.in_reply_to in by_id and root.in_reply_to not in seen:
            root = by_id[root.in_reply_to]
            seen.add(root.id)
        children: dict[str, list[LetterRow]] = {}
        for r in rows:
            if r.in_reply_to is not None:
                children.setdefault(r.in_reply_to, []).append(r)
        order: list[tuple[int, LetterRow]] = []

        def walk(r: LetterRow, depth: int, path: set[str]) -> None:
            order.append((depth, r))
            for child in children.get(r.id, []):
                if child.id not in path:
                    walk(child, depth + 1, path | {child.id})

        walk(root, 0, {root.id})
        views = _views(post, reg, [r for _, r in order], None)
    return Thread([(depth, v) for (depth, _), v in zip(order, views, strict=True)], asked.id)


def export_transcript(
    post: Post, name: str, output: str | os.PathLike[str], decrypted: bool = False
) -> int:
    # Imported here: tar archives are for this verb alone, and every
    # command imports this module.
    from ..transcript import Entry, write

    me = post.me
    with post.home.register() as reg:
        them = reg.find(name).fingerprint
        rows = [
            r for r in reg.all_letters()
            if r.sender in (me, them) and {me, them} <= {r.sender, *r.recipients}
        ]  # fmt: skip
        blocks = {
            r.id: {p.recipient: p.block_key for p in reg.positions_of(r.id)
                   if p.recipient in (me, them) and p.block_key is not None}
            for r in rows
        }  # fmt: skip
    entries = []
    for r in rows:
        kept = post.home.archive(r.envelope)
        if not archived_intact(kept, r.envelope):
            raise FileError(
                f"the archived container of letter {r.id[:16]} is damaged or missing",
                "open or accept an intact copy of the letter to repair it; "
                "'pouch db check' lists every one",
            )
        key = None
        if decrypted:
            with container.load(kept) as c:
                key = disclose(post.identity, c)
        entries.append(Entry(r.id, r.envelope, key, blocks[r.id] if decrypted else {}))

    def one_at_a_time() -> Iterator[BinaryIO]:
        # Never all at once: a correspondence of thousands of letters
        # would run out of file descriptors.
        for r in rows:
            with open(post.home.archive(r.envelope), "rb") as f:
                yield f

    # Decrypted, it discloses every letter: readable by its owner only.
    with atomic_output(output, mode=0o600 if decrypted else None, replace=False) as dst:
        write(dst, [me, them], rfc3339(datetime.now(UTC)), entries, one_at_a_time())
    return len(rows)


def _views(
    post: Post, reg: Register, rows: Sequence[LetterRow], them: str | None
) -> list[LetterView]:
    out = []
    for row in rows:
        private = open_private(post.identity, row.id, row.private)
        seqs = {p.recipient: p.seq for p in reg.positions_of(row.id)}
        if row.direction == "received":
            seq = seqs.get(post.me)
        else:
            seq = seqs.get(them) if them else seqs.get(row.recipients[0])
        subject, parts = private.get("subject", ""), private.get("parts", [])
        assert isinstance(subject, str) and isinstance(parts, list)
        out.append(LetterView(
            row.id, row.envelope, row.direction, row.kind, row.sender, row.recipients, seq,
            row.stream, row.date, subject, tuple(parts), row.in_reply_to, row.state,
            row.published,
        ))  # fmt: skip
    return out


def _missing(reg: Register, me: str, them: str | None) -> list[Missing]:
    """Letters to me that have not arrived: numbers below one that did, in
    each sender's stream (at most MAX_LISTED per stream, one by one)."""
    missing = []
    senders = {p.sender for p in reg.all_positions() if p.recipient == me and p.sender != me}
    for sender in sorted(senders):
        if them is not None and sender != them:
            continue
        for stream in reg.streams(sender, me):
            held = reg.kept_seqs(sender, me, stream)
            gaps = missing_ranges(held, max(held, default=0))
            missing += [Missing(sender, n, stream) for n in first_numbers(gaps, MAX_LISTED)]
    return missing


class Checked(NamedTuple):
    """pouch db check: what is wrong, if anything."""

    problems: list[str]
    letters: int
    stray: int  # archived containers that belong to no letter


def check(home: Home) -> Checked:
    """Check the register: SQLite's integrity check, then the ledger's own
    (SPEC.md 5.3: every stream's numbers and links, reservations, states),
    then the archive: every letter's container there, still hashing to its
    envelope id."""
    with home.register() as reg:
        problems = check_ledger(reg)
        letters = reg.all_letters()
    for row in letters:
        kept = home.archive(row.envelope)
        if not kept.is_file():
            problems.append(
                f"letter {row.id[:16]}: its container is not in the archive; "
                "open or accept a copy of the letter to put it back"
            )
            continue
        if not archived_intact(kept, row.envelope):
            problems.append(
                f"letter {row.id[:16]}: its archived container is damaged (it no longer "
                "hashes to its envelope id); open or accept an intact copy of the letter "
                "to repair it"
            )
    known = {f"{row.envelope}.pouch" for row in letters}
    stray = sum(1 for p in home.archive().iterdir() if p.name not in known)
    return Checked(problems, len(letters), stray)


def restore(home: Home) -> tuple[str, str]:
    """Start a new stream in this home (SPEC.md 5.3): after restoring it from
    a backup, or on a second device made from a copy. Letters sealed from
    now on are numbered afresh and say where the old stream ended. Returns
    the old and the new stream ids."""
    home.card()
    with home.register() as reg:
        return reg.new_stream(new_stream_id)
