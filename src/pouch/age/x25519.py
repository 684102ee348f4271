"""The X25519 recipient type (C2SP age spec, "The X25519 recipient type").

-> X25519 <base64 ephemeral share>
<base64 wrapped file key>

salt = ephemeral share || recipient
wrap key = HKDF-SHA-256(ikm = X25519(ephemeral secret, recipient), salt, info)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric import x25519

from .._kdf import hkdf_sha256
from ..errors import HeaderError, KeyFormatError
from . import bech32
from ._crypto import WRAPPED_KEY_SIZE, unwrap_file_key, wrap_file_key
from ._format import Stanza, b64decode_exact, b64encode

STANZA_TYPE = "X25519"
X25519_LABEL = b"age-encryption.org/v1/X25519"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-"


def is_low_order(public_key: bytes) -> bool:
    """Whether X25519 with this point gives the all-zero secret for every
    key: such a "recipient" would let anyone unwrap the file key."""
    try:
        x25519.X25519PrivateKey.generate().exchange(
            x25519.X25519PublicKey.from_public_bytes(public_key)
        )
    except ValueError:
        return True
    return False


class X25519Recipient:
    """An ``age1…`` public key."""

    labels: frozenset[str] = frozenset()

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise KeyFormatError("invalid X25519 recipient: the key is not 32 bytes")
        if is_low_order(public_key):
            raise KeyFormatError("invalid X25519 recipient: a low-order point")
        self._key = public_key

    @property
    def public_bytes(self) -> bytes:
        return self._key

    def wrap(self, file_key: bytes, rand: Callable[[int], bytes] = os.urandom) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.from_private_bytes(rand(32))
        share = ephemeral.public_key().public_bytes_raw()
        secret = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(self._key))
        key = hkdf_sha256(secret, share + self._key, X25519_LABEL)
        return [Stanza(STANZA_TYPE, (b64encode(share),), wrap_file_key(key, file_key))]

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self._key)

    def __repr__(self) -> str:
        return f"X25519Recipient({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)


class X25519Identity:
    """An ``AGE-SECRET-KEY-1…`` secret key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise KeyFormatError("invalid X25519 identity: the key is not 32 bytes")
        self._secret = secret
        self._key = x25519.X25519PrivateKey.from_private_bytes(secret)
        self._public = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, rand: Callable[[int], bytes] = os.urandom) -> X25519Identity:
        return cls(rand(32))

    @property
    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self._public)

    def exchange(self, public_key: bytes) -> bytes:
        """X25519 with this key; ValueError for a low-order point (an
        all-zero result)."""
        return self._key.exchange(x25519.X25519PublicKey.from_public_bytes(public_key))

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for s in stanzas:
            if s.type != STANZA_TYPE:
                continue
            if len(s.args) != 1:
                raise HeaderError("malformed X25519 stanza: wrong number of arguments")
            share = b64decode_exact(s.args[0], 32)
            if share is None:
                raise HeaderError("malformed X25519 stanza: invalid ephemeral share")
            if len(s.body) != WRAPPED_KEY_SIZE:
                raise HeaderError("malformed X25519 stanza: invalid body length")
            try:
                secret = self._key.exchange(x25519.X25519PublicKey.from_public_bytes(share))
            except ValueError:
                # pyca refuses an all-zero shared secret (a low-order share),
                # which the spec says MUST abort.
                raise HeaderError("malformed X25519 stanza: low-order ephemeral share") from None
            key = hkdf_sha256(secret, share + self._public, X25519_LABEL)
            file_key = unwrap_file_key(key, s.body)
            if file_key is not None:
                return file_key
        return None

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._secret).upper()

    def __repr__(self) -> str:
        return f"X25519Identity({self.recipient})"
