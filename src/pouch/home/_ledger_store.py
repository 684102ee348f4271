"""The ledger's tables in the register (SPEC.md sections 5.2 and 5.3): every
letter sent and received, where each stands in its stream, the numbers
reserved for sealing, forks found, and receipts.

These are storage and queries only; home/ledger.py decides what a letter
that arrives is and which numbers a new letter takes. The queries are
targeted (by sender, recipient, stream and number), so that opening and
sealing do not slow down as the register grows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .._fields import is_prefix
from ..errors import FileError, PouchError, UsageError
from ..letter import LetterKind
from ..letter.order import Mark, Position
from ._store import Store

Direction = Literal["sent", "received"]
# A sent letter moves forward only: sealed, handed over, delivered, answered.
# A received one is received, then perhaps answered; or, if it forks its
# sender's stream, forked: kept as evidence, never released.
State = Literal["sealed", "handed over", "delivered", "answered", "received", "forked"]
SENT_STATES: tuple[State, ...] = ("sealed", "handed over", "delivered", "answered")
# How a receipt came: a receipt letter, or a custody receipt.
ReceiptKind = Literal["letter", "custody"]


class LedgerStore(Store):
    """The ledger's part of the register."""

    # --- streams and the sequence numbers sealing reserves ----------------------

    def stream_id(self, new: Callable[[], str]) -> str:
        """This home's stream id, made with new() the first time."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('stream', ?) ON CONFLICT DO NOTHING",
                (new(),),
            )
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'stream'").fetchone()
        return str(value)

    def reserve(self, stream: str, recipient: str) -> int:
        """Reserve, durably, the next sequence number in stream for a
        correspondent: first step of the crash order for sealing. A number
        reserved by a run that died before it committed a letter is given
        out again (no letter ever had it); a committed one never is."""
        with self._transaction() as db:
            (left,) = db.execute(
                "SELECT MIN(seq) FROM reservations"
                " WHERE stream = ? AND recipient = ? AND letter IS NULL",
                (stream, recipient),
            ).fetchone()
            if left is not None:
                return int(left)
            db.execute(
                "INSERT INTO counters (fingerprint, next_seq) VALUES (?, 1)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (recipient,),
            )
            (seq,) = db.execute(
                "SELECT next_seq FROM counters WHERE fingerprint = ?", (recipient,)
            ).fetchone()
            db.execute(
                "UPDATE counters SET next_seq = next_seq + 1 WHERE fingerprint = ?", (recipient,)
            )
            db.execute(
                "INSERT INTO reservations (stream, recipient, seq) VALUES (?, ?, ?)",
                (stream, recipient, seq),
            )
        return int(seq)

    def new_stream(self, new: Callable[[], str]) -> tuple[str, str]:
        """Start a new stream (a restored home, or a second device): its
        numbers start again at 1, and its letters say where the old one
        ended. Returns the old and the new stream ids."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'stream'").fetchone()
            old, fresh = (row[0] if row else new()), new()
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('previous_stream', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (old,),
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('stream', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (fresh,),
            )
            db.execute("DELETE FROM counters")
            db.execute("DELETE FROM reservations WHERE letter IS NULL")
        return old, fresh

    def previous_stream(self) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = 'previous_stream'")
        return str(rows[0][0]) if rows else None

    # --- letters, positions, forks, receipts ------------------------------------

    def record_sent(
        self, letter: LetterRow, positions: list[Position], output: str | None, job: str | None
    ) -> None:
        """Commit a sealed letter: its id takes the numbers reserved for it
        (second step of the crash order; the output is named after this)."""

        def conflict(e: sqlite3.IntegrityError) -> PouchError:
            return FileError(f"register error: {e}", "run 'pouch db check'")

        with self._transaction(conflict) as db:
            self._insert_letter(db, letter, output, job)
            for p in positions:
                self._insert_position(db, p)
                found = db.execute(
                    "UPDATE reservations SET letter = ? WHERE stream = ? AND recipient = ?"
                    " AND seq = ? AND letter IS NULL",
                    (letter.id, p.stream, p.recipient, p.seq),
                ).rowcount
                if found != 1:
                    raise FileError(f"register error: sequence {p.seq} was not reserved")

    def record_received(
        self, letter: LetterRow, position: Position | None, forks: list[tuple[str, int]], now: str
    ) -> None:
        """Record a letter opened, with its position and the letters it
        forks with (other letter id, sequence number): both kept.

        Two letters cannot be kept at one place: if another command recorded
        one there (or this letter) since it was classified, this one is
        refused, to be opened again and classified against it."""

        def conflict(e: sqlite3.IntegrityError) -> PouchError:
            return FileError(
                "another pouch command recorded this letter, or one at its place, meanwhile",
                "open it again: it will be checked against that one",
            )

        with self._transaction(conflict) as db:
            self._insert_letter(db, letter, None, None)
            if position is not None:
                self._insert_position(db, position, kept=letter.state != "forked")
            for other, seq in forks:
                db.execute(
                    "INSERT INTO forks (letter, other, seq, found) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (letter.id, other, seq, now),
                )

    def _insert_letter(
        self, db: sqlite3.Connection, r: LetterRow, output: str | None, job: str | None
    ) -> None:
        if r.in_reply_to is not None and r.kind == "letter" and r.state != "forked":
            # A letter answered (not by a receipt), by one of its correspondents.
            db.execute(
                "UPDATE letters SET state = 'answered' WHERE id = ? AND state != 'forked'"
                " AND (sender = ? OR instr(recipients, ?) > 0)",
                (r.in_reply_to, r.sender, f'"{r.sender}"'),
            )
        db.execute(
            f"INSERT INTO letters ({_LETTER_COLUMNS}, output, job)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.envelope, r.direction, r.kind, r.sender, json.dumps(list(r.recipients)),
             r.date, r.in_reply_to, r.stream, r.state, r.private, r.recorded, int(r.published),
             output, job),
        )  # fmt: skip

    def _insert_position(self, db: sqlite3.Connection, p: Position, kept: bool = True) -> None:
        a, c = p.ack, p.continues
        db.execute(
            f"INSERT INTO positions ({_POSITION_COLUMNS}, kept)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p.letter, p.sender, p.recipient, p.stream, p.seq, p.prev,
             a.stream if a else None, a.seq if a else None, a.letter if a else None,
             c.stream if c else None, c.seq if c else None, c.letter if c else None,
             p.block_key, int(kept)),
        )  # fmt: skip

    def published(self, letter_id: str) -> None:
        """The letter's output is named (last step of the crash order)."""
        with self._transaction() as db:
            db.execute("UPDATE letters SET published = 1 WHERE id = ?", (letter_id,))

    def sealed_by(self, job: str) -> LetterRow | None:
        """The letter an earlier run of the same command sealed and
        committed, its output written or not."""
        rows = self._rows(f"SELECT {_LETTER_COLUMNS} FROM letters WHERE job = ?", (job,))
        return _letter(rows[0]) if rows else None

    def letter(self, letter_id: str) -> LetterRow | None:
        rows = self._rows(f"SELECT {_LETTER_COLUMNS} FROM letters WHERE id = ?", (letter_id,))
        return _letter(rows[0]) if rows else None

    def letters_by_envelope(self, envelope: str) -> list[LetterRow]:
        rows = self._rows(
            f"SELECT {_LETTER_COLUMNS} FROM letters WHERE envelope = ? ORDER BY date, id",
            (envelope,),
        )
        return [_letter(r) for r in rows]

    def find_letter(self, query: str) -> LetterRow:
        """The one letter whose id, or envelope id, starts with query (at
        least 8 hex digits, any case: SPEC.md 0). Ambiguity is an error
        listing the candidates."""
        q = query.lower()
        if not is_prefix(q):
            raise UsageError(
                f"{query!r} is not a letter id",
                "give a letter's or envelope's id, or at least 8 of its first hex digits",
            )
        rows = [
            _letter(r)
            for r in self._rows(
                f"SELECT {_LETTER_COLUMNS} FROM letters WHERE substr(id, 1, ?) = ?"
                " OR substr(envelope, 1, ?) = ? ORDER BY date, recorded, rowid",
                (len(q), q, len(q), q),
            )
        ]
        if not rows:
            raise UsageError(f"no letter {query!r} in this register", "'pouch letters' lists them")
        if len({r.id for r in rows}) > 1:
            raise UsageError(
                f"{query!r} names {len(rows)} letters",
                *(f"{r.id[:16]}  {r.date}  {r.direction} {r.kind}" for r in rows),
                "give more digits",
            )
        return rows[0]

    def all_letters(self) -> list[LetterRow]:
        rows = self._rows(f"SELECT {_LETTER_COLUMNS} FROM letters ORDER BY date, recorded, rowid")
        return [_letter(r) for r in rows]

    # Targeted queries: opening and sealing stay fast with 10,000s of letters.
    # "Kept" positions are those of letters not recorded as forked.

    def kept_at(self, sender: str, recipient: str, stream: str, seqs: list[int]) -> list[Position]:
        columns = ", ".join("p." + c for c in _POSITION_COLUMNS.split(", "))
        rows = self._rows(
            f"SELECT {columns}{_KEPT} AND p.seq IN ({', '.join('?' * len(seqs))})",
            (sender, recipient, stream, *seqs),
        )
        return [_position(r) for r in rows]

    def kept_seqs(
        self, sender: str, recipient: str, stream: str, below: int | None = None
    ) -> list[int]:
        sql = f"SELECT DISTINCT p.seq{_KEPT}"
        args: tuple[object, ...] = (sender, recipient, stream)
        if below is not None:
            sql += " AND p.seq < ?"
            args += (below,)
        return [int(r[0]) for r in self._rows(sql + " ORDER BY p.seq", args)]

    def kept_count(self, sender: str, recipient: str, stream: str, below: int) -> int:
        """How many numbers below `below` are held."""
        rows = self._rows(
            "SELECT COUNT(DISTINCT seq) FROM positions WHERE sender = ? AND recipient = ?"
            " AND stream = ? AND kept = 1 AND seq < ?",
            (sender, recipient, stream, below),
        )
        return int(rows[0][0])

    def kept_max(self, sender: str, recipient: str, stream: str) -> int:
        """The highest number held (0: none)."""
        rows = self._rows(
            "SELECT COALESCE(MAX(seq), 0) FROM positions WHERE sender = ? AND recipient = ?"
            " AND stream = ? AND kept = 1",
            (sender, recipient, stream),
        )
        return int(rows[0][0])

    def streams(self, sender: str, recipient: str) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT stream FROM positions WHERE sender = ? AND recipient = ?",
            (sender, recipient),
        )
        return sorted(str(r[0]) for r in rows)

    def latest_stream(self, sender: str, recipient: str) -> str | None:
        """The stream of the letter from sender to recipient recorded last."""
        rows = self._rows(
            "SELECT stream FROM positions WHERE sender = ? AND recipient = ? AND kept = 1"
            " ORDER BY rowid DESC LIMIT 1",
            (sender, recipient),
        )
        return str(rows[0][0]) if rows else None

    def max_ack(self, acker: str, acked: str, stream: str) -> int:
        """The highest number of acked's stream that acker acknowledged."""
        rows = self._rows(
            "SELECT COALESCE(MAX(ack_seq), 0) FROM positions"
            " WHERE sender = ? AND recipient = ? AND ack_stream = ? AND kept = 1",
            (acker, acked, stream),
        )
        return int(rows[0][0])

    def best_ack(self, acker: str, acked: str, stream: str) -> Mark | None:
        rows = self._rows(
            "SELECT ack_stream, ack_seq, ack_letter FROM positions WHERE sender = ?"
            " AND recipient = ? AND ack_stream = ? AND kept = 1 ORDER BY ack_seq DESC LIMIT 1",
            (acker, acked, stream),
        )
        return _mark(*rows[0]) if rows else None

    def positions_of(self, letter_id: str) -> list[Position]:
        rows = self._rows(
            f"SELECT {_POSITION_COLUMNS} FROM positions WHERE letter = ? ORDER BY recipient",
            (letter_id,),
        )
        return [_position(r) for r in rows]

    def all_positions(self) -> list[Position]:
        rows = self._rows(
            f"SELECT {_POSITION_COLUMNS} FROM positions ORDER BY sender, recipient, stream, seq"
        )
        return [_position(r) for r in rows]

    def forks(self) -> list[tuple[str, str, int, str]]:
        """(letter, other letter, sequence number, when found)."""
        rows = self._rows("SELECT letter, other, seq, found FROM forks ORDER BY found, letter")
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def reservations(self) -> list[tuple[str, str, int, str | None]]:
        """(stream, recipient, sequence number, letter id or None)."""
        rows = self._rows("SELECT stream, recipient, seq, letter FROM reservations")
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def advance(self, letter_id: str, state: State) -> None:
        """Move a sent letter forward: sealed -> handed over -> delivered ->
        answered; never back."""
        with self._transaction() as db:
            _advance(db, letter_id, state)

    def add_receipt(
        self, letter_id: str, source: str, kind: ReceiptKind, signer: str, time: str
    ) -> None:
        """A receipt for a sent letter, which moves it to delivered (one
        transaction: never one without the other)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO receipts (letter, source, kind, signer, time) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (letter_id, source, kind, signer, time),
            )
            _advance(db, letter_id, "delivered")


@dataclass(frozen=True)
class LetterRow:
    """A letter in the ledger."""

    id: str
    envelope: str
    direction: Direction
    kind: LetterKind
    sender: str  # fingerprints
    recipients: tuple[str, ...]
    date: str
    in_reply_to: str | None
    stream: str
    state: State
    private: bytes  # subject and part names, sealed to the owner (ledger.seal_private)
    recorded: str
    published: bool = False


_LETTER_COLUMNS = (
    "id, envelope, direction, kind, sender, recipients, date, in_reply_to, stream, state,"
    " private, recorded, published"
)
_POSITION_COLUMNS = (
    "letter, sender, recipient, stream, seq, prev, ack_stream, ack_seq, ack_letter,"
    " cont_stream, cont_seq, cont_letter, block_key"
)
# Positions "kept": those of letters not recorded as forked.
_KEPT = " FROM positions p WHERE p.kept = 1 AND p.sender = ? AND p.recipient = ? AND p.stream = ?"


def _advance(db: sqlite3.Connection, letter_id: str, state: State) -> None:
    """LedgerStore.advance, inside a transaction."""
    later = SENT_STATES[SENT_STATES.index(state) + 1 :]
    db.execute(
        "UPDATE letters SET state = ? WHERE id = ? AND direction = 'sent'"
        f" AND state NOT IN ({', '.join('?' * (len(later) + 1))})",
        (state, letter_id, *later, state),
    )


def _letter(r: tuple[Any, ...]) -> LetterRow:
    return LetterRow(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7], r[8],
                     r[9], r[10], r[11], bool(r[12]))  # fmt: skip


def _mark(stream: str | None, seq: int | None, letter: str | None) -> Mark | None:
    return None if stream is None or seq is None else Mark(stream, int(seq), letter)


def _position(r: tuple[Any, ...]) -> Position:
    return Position(r[0], r[1], r[2], r[3], int(r[4]), r[5], _mark(*r[6:9]), _mark(*r[9:12]),
                    r[12])  # fmt: skip
