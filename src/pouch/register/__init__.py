"""The register: pouch's SQLite ledger in the home folder (DESIGN.md layer 5).

It holds contacts (their verified cards, and how and when each was
verified), the per-correspondent counters sealing draws sequence numbers
from, and credentials and revocations (issued or received). The schema
is versioned with SQLite's user_version and only ever migrated forward;
every write is a transaction in WAL mode with synchronous=FULL, so a crash
leaves either the old or the new state.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..credentials import Credential, Revocation, Scope
from ..errors import FileError, UsageError
from ..identity import Card, fingerprint

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
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
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

    def next_sequence(self, fingerprint: str) -> int:
        """Reserve, durably, the next sequence number for a correspondent."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO counters (fingerprint, next_seq) VALUES (?, 1)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (fingerprint,),
            )
            (seq,) = db.execute(
                "SELECT next_seq FROM counters WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            db.execute(
                "UPDATE counters SET next_seq = next_seq + 1 WHERE fingerprint = ?",
                (fingerprint,),
            )
        return int(seq)

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


def _contact(row: tuple[bytes, str, str | None, str | None]) -> Contact:
    return Contact(Card.from_bytes(row[0]), row[1], row[2], row[3])
