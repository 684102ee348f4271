"""The register: pouch's SQLite ledger in the home folder (DESIGN.md layer 5).

It holds contacts (their verified cards, and how and when each was
verified), the per-correspondent counters sealing draws sequence numbers
from, and credentials and revocations (issued or received). The schema
is versioned with SQLite's user_version and only ever migrated forward;
every write is a transaction in WAL mode with synchronous=FULL, so a crash
leaves either the old or the new state.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..credentials import Credential, Revocation, Scope
from ..errors import FileError, PouchError, UsageError
from ..identity import Card, fingerprint
from ..order import Mark

# Each entry migrates the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE contacts (
        fingerprint  TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        card         BLOB NOT NULL,
        added        TEXT NOT NULL,
        verified     TEXT,
        verified_how TEXT
    );
    CREATE TABLE counters (
        fingerprint TEXT PRIMARY KEY,
        next_seq    INTEGER NOT NULL CHECK (next_seq >= 1)
    );
    """,
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE credentials (
        id         TEXT PRIMARY KEY,
        principal  TEXT NOT NULL,
        agent      TEXT NOT NULL,
        role       TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        until      TEXT NOT NULL,
        statement  BLOB NOT NULL,
        scope      BLOB,
        added      TEXT NOT NULL
    );
    CREATE TABLE revocations (
        id         TEXT PRIMARY KEY,
        credential TEXT NOT NULL,
        principal  TEXT NOT NULL,
        statement  BLOB NOT NULL,
        added      TEXT NOT NULL
    );
    CREATE INDEX revocations_by_credential ON revocations (credential);
    """,
    """
    CREATE TABLE custody_heads (
        envelope TEXT PRIMARY KEY,
        head     TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        accepted TEXT NOT NULL
    );
    """,
    # The ledger (issue 5): every letter sent and received, where each
    # stands in its stream, forks found, receipts. Content (subjects, part
    # names) is sealed to the owner in `private`; ids, hashes, states are not.
    # Letters sealed before it carry no order blocks and cannot be opened by
    # this version: their numbers start again.
    """
    CREATE TABLE letters (
        id          TEXT PRIMARY KEY,
        envelope    TEXT NOT NULL,
        direction   TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
        kind        TEXT NOT NULL CHECK (kind IN ('letter', 'receipt')),
        sender      TEXT NOT NULL,
        recipients  TEXT NOT NULL,
        date        TEXT NOT NULL,
        in_reply_to TEXT,
        stream      TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('sealed', 'handed over', 'delivered',
                                                   'answered', 'received', 'forked')),
        private     BLOB NOT NULL,
        recorded    TEXT NOT NULL,
        published   INTEGER NOT NULL CHECK (published IN (0, 1)),
        output      TEXT,
        job         TEXT
    );
    CREATE INDEX letters_by_envelope ON letters (envelope);
    CREATE INDEX letters_by_reply ON letters (in_reply_to);
    CREATE UNIQUE INDEX letters_by_job ON letters (job) WHERE job IS NOT NULL;
    CREATE TABLE positions (
        letter      TEXT NOT NULL REFERENCES letters (id),
        sender      TEXT NOT NULL,
        recipient   TEXT NOT NULL,
        stream      TEXT NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        prev        TEXT,
        ack_stream  TEXT,
        ack_seq     INTEGER,
        ack_letter  TEXT,
        cont_stream TEXT,
        cont_seq    INTEGER,
        cont_letter TEXT,
        block_key   BLOB,
        kept        INTEGER NOT NULL CHECK (kept IN (0, 1)),
        PRIMARY KEY (letter, recipient)
    );
    CREATE INDEX positions_by_place ON positions (sender, recipient, stream, kept, seq);
    CREATE INDEX positions_by_pair ON positions (sender, recipient, kept);
    CREATE UNIQUE INDEX positions_kept_once ON positions (sender, recipient, stream, seq)
        WHERE kept = 1;
    CREATE INDEX positions_by_ack ON positions (sender, recipient, ack_stream, ack_seq);
    CREATE TABLE reservations (
        stream    TEXT NOT NULL,
        recipient TEXT NOT NULL,
        seq       INTEGER NOT NULL CHECK (seq >= 1),
        letter    TEXT REFERENCES letters (id),
        PRIMARY KEY (stream, recipient, seq)
    );
    CREATE INDEX reservations_free ON reservations (stream, recipient, seq) WHERE letter IS NULL;
    CREATE TABLE forks (
        letter TEXT NOT NULL REFERENCES letters (id),
        other  TEXT NOT NULL REFERENCES letters (id),
        seq    INTEGER NOT NULL,
        found  TEXT NOT NULL,
        PRIMARY KEY (letter, other)
    );
    DELETE FROM counters;
    CREATE TABLE receipts (
        letter TEXT NOT NULL REFERENCES letters (id),
        source TEXT NOT NULL,
        kind   TEXT NOT NULL CHECK (kind IN ('letter', 'custody')),
        signer TEXT NOT NULL,
        time   TEXT NOT NULL,
        PRIMARY KEY (letter, source)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# A fingerprint prefix must be at least this long to name a contact.
MIN_PREFIX = 8


@dataclass(frozen=True)
class Contact:
    card: Card
    added: str
    verified: str | None
    verified_how: str | None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint


class Register:
    def __init__(self, path: str | Path) -> None:
        try:
            # Private from the start: SQLite gives its -wal and -shm files
            # the database file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.DatabaseError, OSError) as e:
            raise FileError(f"cannot open the register {path}: {e}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(
        self, conflict: Callable[[sqlite3.IntegrityError], PouchError] | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One transaction; a violated constraint is conflict(e) where the
        caller can say what it means, a register error otherwise."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            if conflict is None:
                raise FileError(f"register error: {e}") from None
            raise conflict(e) from None
        except sqlite3.Error as e:
            raise FileError(f"register error: {e}") from None

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise FileError(f"register error: {e}") from None

    def _migrate(self) -> None:
        with self._transaction() as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise FileError(
                    f"the register has schema version {version}; this pouch knows {SCHEMA_VERSION}",
                    "upgrade pouch",
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])

    # --- contacts ------------------------------------------------------------

    def add_contact(self, card: Card, now: str, verified_how: str | None = None) -> Contact:
        """Record card as a contact; a card already known is kept as it is
        (its verification, if any, too) and only marked verified if asked."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO contacts (fingerprint, name, card, added) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (card.fingerprint, card.name, card.encode(), now),
            )
            if verified_how is not None:
                db.execute(
                    "UPDATE contacts SET verified = ?, verified_how = ?"
                    " WHERE fingerprint = ? AND verified IS NULL",
                    (now, verified_how, card.fingerprint),
                )
        return self.contact(card.fingerprint)

    def mark_verified(self, fingerprint: str, now: str, how: str) -> Contact:
        with self._transaction() as db:
            db.execute(
                "UPDATE contacts SET verified = ?, verified_how = ? WHERE fingerprint = ?",
                (now, how, fingerprint),
            )
        return self.contact(fingerprint)

    def contacts(self) -> list[Contact]:
        rows = self._rows(
            "SELECT card, added, verified, verified_how FROM contacts ORDER BY name, fingerprint"
        )
        return [_contact(row) for row in rows]

    def contact(self, fingerprint: str) -> Contact:
        found = self._rows(
            "SELECT card, added, verified, verified_how FROM contacts WHERE fingerprint = ?",
            (fingerprint,),
        )
        row = found[0] if found else None
        if row is None:
            raise UsageError(f"no contact with fingerprint {fingerprint[:16]}")
        return _contact(row)

    def find(self, query: str) -> Contact:
        """The one contact named query, or whose fingerprint starts with it
        (at least 8 hex digits). Ambiguity is an error listing the candidates."""
        everyone = self.contacts()
        q = query.casefold()
        found = [c for c in everyone if c.name.casefold() == q]
        if len(query) >= MIN_PREFIX and all(ch in "0123456789abcdef" for ch in q):
            found += [c for c in everyone if c.fingerprint.startswith(q) and c not in found]
        if not found:
            raise UsageError(
                f"no contact named {query!r}",
                "'pouch contacts list' shows them; a fingerprint prefix needs 8 digits",
            )
        if len(found) > 1:
            raise UsageError(
                f"{query!r} names {len(found)} contacts",
                *(f"{c.fingerprint[:16]}  {c.name}" for c in found),
                "give a longer fingerprint prefix",
            )
        return found[0]

    # --- sequence counters (the register issue gives them their full meaning)

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

    # --- credentials and revocations (issue 4) -------------------------------

    def add_credential(self, credential: Credential, scope: Scope | None, now: str) -> None:
        """Keep a verified credential (issued or received), with its scope's
        opening when known. A credential already kept gains an opening."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO credentials (id, principal, agent, role, valid_from, until,"
                " statement, scope, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET scope = COALESCE(scope, excluded.scope)",
                (
                    credential.id,
                    credential.principal_fingerprint,
                    credential.agent_fingerprint,
                    credential.role,
                    credential.valid_from,
                    credential.until,
                    credential.encode(),
                    scope.encode() if scope else None,
                    now,
                ),
            )

    def credentials(self) -> list[tuple[Credential, Scope | None]]:
        rows = self._rows("SELECT statement, scope FROM credentials ORDER BY valid_from, id")
        return [
            (Credential.from_bytes(st), Scope.from_bytes(sc) if sc else None) for st, sc in rows
        ]

    def find_credential(self, query: str) -> Credential:
        """The credential whose id starts with query (at least 8 hex digits)."""
        q = query.lower()
        if len(q) < MIN_PREFIX or not all(ch in "0123456789abcdef" for ch in q):
            raise UsageError("a credential is named by its id, or at least 8 of its first digits")
        rows = self._rows(
            "SELECT statement FROM credentials WHERE substr(id, 1, ?) = ?", (len(q), q)
        )
        if not rows:
            raise UsageError(
                f"no credential {query!r} in this register", "'pouch credentials list' shows them"
            )
        if len(rows) > 1:
            raise UsageError(f"{query!r} names {len(rows)} credentials: give more digits")
        return Credential.from_bytes(rows[0][0])

    def add_revocation(self, revocation: Revocation, now: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO revocations (id, credential, principal, statement, added)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    revocation.id,
                    revocation.credential,
                    fingerprint(revocation.principal),
                    revocation.encode(),
                    now,
                ),
            )

    def revocation(self, credential: Credential) -> Revocation | None:
        """A revocation of credential by its issuer, as far as this register
        knows; None if it knows of none."""
        rows = self._rows(
            "SELECT statement FROM revocations WHERE credential = ? ORDER BY added",
            (credential.id,),
        )
        for (statement,) in rows:
            r = Revocation.from_bytes(statement)
            if r.revokes(credential):
                return r
        return None

    # --- custody ---------------------------------------------------------------

    def accepted_head(self, envelope: str, head: str, seq: int, now: str) -> None:
        """Remember the chain head this home accepted: a trailer cut back
        later changes nothing for it."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO custody_heads (envelope, head, seq, accepted) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (envelope) DO UPDATE SET head = excluded.head, seq = excluded.seq,"
                " accepted = excluded.accepted WHERE excluded.seq > custody_heads.seq",
                (envelope, head, seq, now),
            )

    def custody_head(self, envelope: str) -> tuple[str, int] | None:
        rows = self._rows("SELECT head, seq FROM custody_heads WHERE envelope = ?", (envelope,))
        return (rows[0][0], int(rows[0][1])) if rows else None

    # --- the ledger (issue 5) ------------------------------------------------

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

    def advance(self, letter_id: str, state: str) -> None:
        """Move a sent letter forward: sealed -> handed over -> delivered ->
        answered; never back."""
        with self._transaction() as db:
            _advance(db, letter_id, state)

    def add_receipt(self, letter_id: str, source: str, kind: str, signer: str, time: str) -> None:
        """A receipt for a sent letter, which moves it to delivered (one
        transaction: never one without the other)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO receipts (letter, source, kind, signer, time) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (letter_id, source, kind, signer, time),
            )
            _advance(db, letter_id, "delivered")

    def integrity(self) -> list[str]:
        """SQLite's own checks: the file's structure, and foreign keys."""
        problems = [str(r[0]) for r in self._rows("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [
            f"a {r[0]} row points to a missing {r[2]} row"
            for r in self._rows("PRAGMA foreign_key_check")
        ]
        return problems


@dataclass(frozen=True)
class LetterRow:
    """A letter in the ledger."""

    id: str
    envelope: str
    direction: str  # "sent" or "received"
    kind: str  # "letter" or "receipt"
    sender: str  # fingerprints
    recipients: tuple[str, ...]
    date: str
    in_reply_to: str | None
    stream: str
    state: str
    private: bytes  # subject and part names, sealed to the owner (ledger.seal_private)
    recorded: str
    published: bool = False


@dataclass(frozen=True)
class Position:
    """Where a letter stands in its sender's stream to one recipient."""

    letter: str
    sender: str
    recipient: str
    stream: str
    seq: int
    prev: str | None
    ack: Mark | None
    continues: Mark | None
    block_key: bytes | None = None


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


def _advance(db: sqlite3.Connection, letter_id: str, state: str) -> None:
    """Register.advance, inside a transaction."""
    order = ["sealed", "handed over", "delivered", "answered"]
    later = order[order.index(state) + 1 :]
    db.execute(
        "UPDATE letters SET state = ? WHERE id = ? AND direction = 'sent'"
        f" AND state NOT IN ({', '.join('?' * len(later))}, ?)",
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


def _contact(row: tuple[bytes, str, str | None, str | None]) -> Contact:
    return Contact(Card.from_bytes(row[0]), row[1], row[2], row[3])
