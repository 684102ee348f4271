"""The pouch home: one principal's identity, card and register (SPEC.md 5).

    HOME/card.json      the public card (a signed statement)
    HOME/identity.key   the secret keys: an age file encrypted with a
                        passphrase (scrypt, logN 18), or plain text with
                        --no-passphrase; mode 0600 either way
    HOME/register.db    the SQLite register

HOME is --home, else $POUCH_HOME, else the platform's user-data folder
(platformdirs: ~/.local/share/pouch on Linux). It is created mode 0700.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from . import age
from ._io import atomic_output, read_small
from .age.keys import check_private
from .errors import FileError, RefusedError
from .identity import Card, Identity
from .register import Register
from .statements import MAX_ENVELOPE

HOME_ENV = "POUCH_HOME"
# DESIGN.md 5: passphrase-protected with scrypt at logN >= 18.
KEY_WORK_FACTOR = 18

Passphrase = Callable[[], bytes]


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
        return Register(self.register_path)
