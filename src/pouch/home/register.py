"""The register: pouch's SQLite file in the home folder (SPEC.md section 5.2).

It holds contacts (their verified cards, and how and when each was
verified), credentials and revocations (issued or received), the custody
heads this home accepted, and the ledger (_ledger_store.py): every letter
sent and received and where it stands.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .._fields import is_prefix
from ..custody import Credential, Revocation, Scope
from ..errors import NameTakenError, RefusedError, UsageError
from ..identity import Card, check_name, fingerprint
from ._ledger_store import LedgerStore


@dataclass(frozen=True)
class Contact:
    card: Card
    added: str
    verified: str | None
    verified_how: str | None
    # What this home calls them: the card's own name, unless it was taken
    # (by another key) or the user chose another. One name, one key.
    name: str

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint


class Register(LedgerStore):
    """The register of one home; open it with Home.register(), as a context
    manager."""

    # --- contacts ------------------------------------------------------------

    def add_contact(
        self, card: Card, now: str, verified_how: str | None = None, name: str | None = None
    ) -> Contact:
        """Record card as a contact, called name (else the card's own name);
        a card already known is kept as it is (its verification, if any,
        too) and only marked verified if asked.

        A name already taken by another key is refused: two keys under one
        name is how an impostor passes for someone (NameTakenError)."""
        chosen = check_name(name) if name is not None else card.name
        with self._transaction() as db:
            held = self._rows(
                "SELECT name FROM contacts WHERE fingerprint = ?", (card.fingerprint,)
            )
            if not held:
                self._check_free(chosen, card.fingerprint)
            elif name is not None and held[0][0] != name:
                raise UsageError(
                    f"you already have this card, as {held[0][0]!r}",
                    f"to call it {name!r}: pouch contacts rename {card.fingerprint[:16]} NEW_NAME",
                )
            db.execute(
                "INSERT INTO contacts (fingerprint, name, card, added) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (card.fingerprint, chosen, card.encode(), now),
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

    def rename(self, fingerprint: str, name: str) -> Contact:
        """Call a contact name from now on (a name no other key has)."""
        name = check_name(name)
        with self._transaction() as db:
            self._check_free(name, fingerprint, renaming=True)
            db.execute("UPDATE contacts SET name = ? WHERE fingerprint = ?", (name, fingerprint))
        return self.contact(fingerprint)

    def remove(self, fingerprint: str) -> None:
        """Forget a contact. The letters exchanged stay in the register, under
        the fingerprint; adding the card again brings the name back."""
        with self._transaction() as db:
            db.execute("DELETE FROM contacts WHERE fingerprint = ?", (fingerprint,))

    def _check_free(self, name: str, fingerprint: str, renaming: bool = False) -> None:
        if is_prefix(name.casefold()):
            # A card names itself: one named like a fingerprint prefix
            # would be picked where that prefix names someone else.
            raise UsageError(
                f"{name!r} looks like a fingerprint, not a name",
                "give it a name of your own: --as NAME",
            )
        taken = [
            c
            for c in self.contacts()
            if _skeleton(c.name) == _skeleton(name) and c.fingerprint != fingerprint
        ]
        if taken and renaming:
            raise RefusedError(
                f"{taken[0].name!r} is already the name of another contact: one name, one key",
                "choose another name",
            )
        if taken:
            raise NameTakenError(name, taken[0].fingerprint, fingerprint)

    def contacts(self) -> list[Contact]:
        rows = self._rows(
            "SELECT card, added, verified, verified_how, name FROM contacts"
            " ORDER BY name, fingerprint"
        )
        return [_contact(row) for row in rows]

    def contact(self, fingerprint: str) -> Contact:
        found = self._rows(
            "SELECT card, added, verified, verified_how, name FROM contacts WHERE fingerprint = ?",
            (fingerprint,),
        )
        row = found[0] if found else None
        if row is None:
            raise UsageError(f"no contact with fingerprint {fingerprint[:16]}")
        return _contact(row)

    def find(self, query: str) -> Contact:
        """The one contact named query, else the one whose name starts with
        it; and the one whose fingerprint starts with it (at least 8 hex
        digits). Case does not matter. Ambiguity, a name and a fingerprint
        included, is an error listing the candidates."""
        everyone = self.contacts()
        q = _skeleton(query)
        found = [c for c in everyone if _skeleton(c.name) == q]
        if not found:
            found = [c for c in everyone if _skeleton(c.name).startswith(q)]
        if is_prefix(query.casefold()):
            fp = query.casefold()
            found += [c for c in everyone if c.fingerprint.startswith(fp) and c not in found]
        if not found:
            raise UsageError(
                f"no contact named {query!r}",
                "'pouch contacts list' shows them; a fingerprint prefix needs 8 digits",
            )
        if len(found) > 1:
            raise UsageError(
                f"{query!r} names {len(found)} contacts",
                *(f"{c.fingerprint[:16]}  {c.name}" for c in found),
                "give more of the name, or a longer fingerprint prefix",
            )
        return found[0]

    # --- credentials and revocations --------------------------------------------

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
        if not is_prefix(q):
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


def _skeleton(name: str) -> str:
    """What a name looks like, for telling names apart: compatibility forms
    folded (NFKC: a no-break space is a space), runs of spaces one, case
    ignored. Look-alike letters of other scripts are not folded (see
    README: names are checked in person, with the safety number)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _contact(row: tuple[bytes, str, str | None, str | None, str]) -> Contact:
    return Contact(Card.from_bytes(row[0]), row[1], row[2], row[3], row[4])
