"""HKDF-SHA-256 (RFC 5869), the one key derivation pouch uses: for age's
stanzas and header MAC, the order blocks' keys (SPEC.md 2.7) and the
register's private records (SPEC.md 5.2)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """32 bytes. An empty salt and HKDF's default (a hash-length of zeros)
    give the same HMAC key, so salt=b"" is passed through as is."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)
