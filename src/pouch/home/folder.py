"""The pouch home: one principal's identity, card, register and archive
(SPEC.md section 5).

    HOME/card.json      the public card (a signed statement)
    HOME/identity.key   the secret keys: an age file encrypted with a
                        passphrase (scrypt, logN 18), or plain text with
                        --no-passphrase; mode 0600 either way
    HOME/register.db    the SQLite register
    HOME/archive/       every container sent or received, by envelope id

HOME is --home, else $POUCH_HOME, else the platform's user-data folder
(platformdirs: ~/.local/share/pouch on Linux). It is created mode 0700.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .. import age
from .._fields import rfc3339
from .._io import Expect, atomic_output, copy_durably, read_small, room_hint
from ..age.keys import check_private
from ..container import Container, load
from ..errors import FileError, PouchError, RefusedError, UsageError
from ..identity import Card, Identity
from ..statements import MAX_ENVELOPE
from .register import Contact, Register

HOME_ENV = "POUCH_HOME"
# SPEC.md 5: the secret keys are encrypted with scrypt at logN 18 (about
# a second and 256 MiB here), so that a stolen key file resists guessing.
KEY_WORK_FACTOR = 18

Passphrase = Callable[[], bytes]


def archived_intact(kept: Path, envelope: str) -> bool:
    """Whether the archived container at kept still hashes to its envelope
    id, its trailer whole: the archive's own check (pouch db check, and
    before a repair)."""
    try:
        with load(kept) as c:
            return not c.torn and c.envelope_id() == envelope
    except PouchError:
        return False


def default_home() -> Path:
    import platformdirs

    return platformdirs.user_data_path("pouch")


class Home:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        chosen = path or os.environ.get(HOME_ENV) or default_home()
        self.path = Path(chosen).expanduser()

    @property
    def card_path(self) -> Path:
        return self.path / "card.json"

    @property
    def key_path(self) -> Path:
        return self.path / "identity.key"

    @property
    def register_path(self) -> Path:
        return self.path / "register.db"

    @property
    def archive_path(self) -> Path:
        """Every container sent or received, by envelope id: what
        transcripts are made of, and the evidence of a fork."""
        return self.path / "archive"

    def archive(self, envelope: str | None = None) -> Path:
        """Where the container with this envelope id is kept (without one,
        the folder), the folder made, private, if need be."""
        self.archive_path.mkdir(mode=0o700, exist_ok=True)
        return self.archive_path if envelope is None else self.archive_path / f"{envelope}.pouch"

    def keep(self, c: Container, envelope: str) -> bool:
        """Keep a copy of the container c, whose envelope id was verified,
        in the archive (from the handle it was verified through, never its
        path again). One kept already is left alone if it still hashes to
        its envelope id, and replaced if it does not: an intact copy
        repairs a damaged archive. Returns whether it wrote a copy."""
        kept = self.archive(envelope)
        exists = kept.exists()
        if exists and archived_intact(kept, envelope):
            return False
        # Up to its last good record (a torn one is left behind), and only
        # if the ciphertext copied is still the one verified.
        expect = Expect(c.age_offset, c.age_length, envelope)
        try:
            copy_durably(c.src, kept, replace=exists, length=c.trailer_end, expect=expect)
        except FileExistsError:
            return False  # kept meanwhile, by another pouch
        except OSError as e:
            # No errno: the archive's own message, not one about the output.
            raise FileError(
                f"cannot keep the letter in {kept}: {e.strerror}", *room_hint(e.errno)
            ) from None
        return True

    def create(self, identity: Identity, passphrase: bytes | None) -> Card:
        """Write identity here, its keys encrypted to passphrase (None: not)."""
        if self.card_path.exists() or self.key_path.exists():
            raise RefusedError(
                f"{self.path} already holds an identity",
                "pouch never replaces one; use another --home",
            )
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise FileError(f"cannot create {self.path}: {e.strerror}") from None
        secret = identity.secret_text().encode()
        with atomic_output(self.key_path, mode=0o600, replace=False) as f:
            if passphrase is None:
                f.write(secret)
            else:
                recipient = age.ScryptRecipient(passphrase, work_factor=KEY_WORK_FACTOR)
                age.encrypt(io.BytesIO(secret), f, [recipient])
        card = identity.card()
        with atomic_output(self.card_path, mode=0o644, replace=False) as f:
            f.write(card.encode() + b"\n")
        with self.register():
            pass
        return card

    def card(self) -> Card:
        if not self.card_path.exists():
            raise FileError(
                f"no pouch identity in {self.path}", "create one with 'pouch init --name NAME'"
            )
        data = read_small(self.card_path, MAX_ENVELOPE, "a card")
        return Card.from_bytes(data.rstrip(b"\n"))

    def unlock(self, passphrase: Passphrase) -> Identity:
        """The secret identity; passphrase() is called only if it is encrypted."""
        card = self.card()
        check_private(self.key_path)
        data = read_small(self.key_path, 1 << 20, "an identity file")
        if data.startswith(b"age-encryption.org/"):
            plain = io.BytesIO()
            age.decrypt(io.BytesIO(data), plain, [age.ScryptIdentity(passphrase)])
            data = plain.getvalue()
        return Identity.from_secret_text(data.decode("utf-8", "replace"), card)

    def register(self) -> Register:
        if not self.register_path.exists() and not self.card_path.exists():
            self.card()  # says there is no identity here, and how to make one
        return Register(self.register_path)

    # --- what needs no secret key ------------------------------------------------

    def contacts(self) -> list[Contact]:
        with self.register() as reg:
            return reg.contacts()

    def find(self, query: str) -> Contact:
        """The one contact query names: a name, or a fingerprint prefix of
        at least 8 digits (SPEC.md 0)."""
        with self.register() as reg:
            return reg.find(query)

    def add_contact(self, card: Card, verified: bool = False, name: str | None = None) -> Contact:
        """Keep card as a contact, called name (else the card's own name),
        verified in person at import if said so; a card already kept stays as
        it is (and only gains a verification). A name another key has is
        refused (NameTakenError): give this one another."""
        if card.fingerprint == self.card().fingerprint:
            raise UsageError("that is your own card")
        how = "in person, at import" if verified else None
        with self.register() as reg:
            return reg.add_contact(card, _now(), how, name)

    def rename_contact(self, contact: Contact, name: str) -> Contact:
        with self.register() as reg:
            return reg.rename(contact.fingerprint, name)

    def remove_contact(self, contact: Contact) -> None:
        """Forget contact; the letters exchanged stay in the register."""
        with self.register() as reg:
            reg.remove(contact.fingerprint)

    def mark_verified(self, contact: Contact, how: str) -> Contact:
        with self.register() as reg:
            return reg.mark_verified(contact.fingerprint, _now(), how)


def _now() -> str:
    return rfc3339(datetime.now(UTC))
