"""The register's SQLite file (SPEC.md section 5.2): its schema, migrated
forward only, and its transactions.

The schema is versioned with SQLite's user_version. Every write is a
transaction (BEGIN IMMEDIATE) in WAL mode with synchronous=FULL, so a crash
leaves either the old or the new state; the file and its -wal and -shm
companions are private to their owner.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from ..errors import FileError, PouchError

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
    # The ledger (SPEC.md 5.3): every letter sent and received, where each
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


class Store:
    """A connection to the register's file, the schema brought up to date."""

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

    def __enter__(self) -> Self:
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

    def integrity(self) -> list[str]:
        """SQLite's own checks: the file's structure, and foreign keys."""
        problems = [str(r[0]) for r in self._rows("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [
            f"a {r[0]} row points to a missing {r[2]} row"
            for r in self._rows("PRAGMA foreign_key_check")
        ]
        return problems
