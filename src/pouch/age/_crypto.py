"""Small helpers over pyca/cryptography shared by the recipient types."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

FILE_KEY_SIZE = 16
# A wrapped file key: 16 bytes and a 16-byte Poly1305 tag. Every native
# stanza's body must be exactly this long, checked "before attempting to
# decrypt it, to mitigate partitioning oracle attacks" (age spec).
WRAPPED_KEY_SIZE = FILE_KEY_SIZE + 16
_ZERO_NONCE = bytes(12)


def wrap_file_key(key: bytes, file_key: bytes) -> bytes:
    # The nonce is fixed at zero: every wrap key is used exactly once.
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def unwrap_file_key(key: bytes, body: bytes) -> bytes | None:
    """The file key, or None if body does not open under key."""
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None
