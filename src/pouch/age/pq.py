"""The MLKEM768-X25519 hybrid post-quantum recipient type (C2SP age spec).

    -> mlkem768x25519 <base64 enc, 1120 bytes>
    <base64 HPKE ciphertext of the file key, 32 bytes>

HPKE (RFC 9180) base mode with KEM MLKEM768-X25519 (X-Wing, KEM id 0x647a),
HKDF-SHA256 and ChaCha20Poly1305, info "age-encryption.org/mlkem768x25519",
empty aad; from pyca/cryptography's hpke module.

An identity is a 32-byte seed. The KEM expands it with SHAKE256 into 96
bytes: the first 64 are the ML-KEM-768 seed (d || z), the last 32 the X25519
secret key (draft-connolly-cfrg-xwing-kem, "Key derivation"). pyca builds the
hybrid key from those two parts, so the expansion is done here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from ..errors import HeaderError, KeyFormatError
from . import bech32
from ._crypto import WRAPPED_KEY_SIZE
from ._format import Stanza, b64decode_exact, b64encode
from .x25519 import is_low_order

STANZA_TYPE = "mlkem768x25519"
PQ_LABEL = b"age-encryption.org/mlkem768x25519"
RECIPIENT_HRP = "age1pq"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
SEED_SIZE = 32
MLKEM_PUBLIC_SIZE = 1184
MLKEM_CIPHERTEXT_SIZE = 1088
PUBLIC_SIZE = MLKEM_PUBLIC_SIZE + 32
ENC_SIZE = MLKEM_CIPHERTEXT_SIZE + 32

_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class HybridRecipient:
    """An ``age1pq1…`` public key: ML-KEM-768 encapsulation key || X25519 key."""

    # The spec: the same file "SHOULD NOT be encrypted to both this recipient
    # type and to other non-quantum-resistant recipient types". Recipients
    # with different labels are never mixed in one file.
    labels: frozenset[str] = frozenset({"postquantum"})

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != PUBLIC_SIZE:
            raise KeyFormatError("invalid post-quantum recipient: wrong key length")
        try:
            m = mlkem.MLKEM768PublicKey.from_public_bytes(public_key[:MLKEM_PUBLIC_SIZE])
            x = x25519.X25519PublicKey.from_public_bytes(public_key[MLKEM_PUBLIC_SIZE:])
        except ValueError:
            raise KeyFormatError("invalid post-quantum recipient: not a valid key") from None
        if is_low_order(public_key[MLKEM_PUBLIC_SIZE:]):
            raise KeyFormatError("invalid post-quantum recipient: a low-order X25519 point")
        self._bytes = public_key
        self._key = hpke.MLKEM768X25519PublicKey(m, x)

    @property
    def public_bytes(self) -> bytes:
        return self._bytes

    def wrap(self, file_key: bytes, rand: Callable[[int], bytes] = os.urandom) -> list[Stanza]:
        # pyca's HPKE draws its own ephemeral randomness; rand cannot reach it,
        # so post-quantum stanzas are never reproducible (vectors use X25519).
        sealed = _SUITE.encrypt(file_key, self._key, info=PQ_LABEL)
        enc, body = sealed[:ENC_SIZE], sealed[ENC_SIZE:]
        return [Stanza(STANZA_TYPE, (b64encode(enc),), body)]

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self._bytes)

    def __repr__(self) -> str:
        return f"HybridRecipient({str(self)[:24]}…)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridRecipient) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)


def _expand(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    h = hashes.Hash(hashes.SHAKE256(digest_size=96))
    h.update(seed)
    expanded = h.finalize()
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


class HybridIdentity:
    """An ``AGE-SECRET-KEY-PQ-1…`` secret key (a 32-byte seed)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise KeyFormatError("invalid post-quantum identity: the seed is not 32 bytes")
        self._seed = seed
        m, self._x25519 = _expand(seed)
        self._key = hpke.MLKEM768X25519PrivateKey(m, self._x25519)
        self._public = (
            m.public_key().public_bytes_raw() + self._x25519.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls, rand: Callable[[int], bytes] = os.urandom) -> HybridIdentity:
        return cls(rand(SEED_SIZE))

    @property
    def recipient(self) -> HybridRecipient:
        return HybridRecipient(self._public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for s in stanzas:
            if s.type != STANZA_TYPE:
                continue
            if len(s.args) != 1:
                raise HeaderError("malformed mlkem768x25519 stanza: wrong number of arguments")
            enc = b64decode_exact(s.args[0], ENC_SIZE)
            if enc is None:
                raise HeaderError("malformed mlkem768x25519 stanza: invalid encapsulated key")
            if len(s.body) != WRAPPED_KEY_SIZE:
                raise HeaderError("malformed mlkem768x25519 stanza: invalid body length")
            # X-Wing decapsulation does not itself reject a low-order X25519
            # share; age treats the all-zero shared secret as a malformed
            # stanza, not as "not for me", so it is checked here first.
            try:
                share = x25519.X25519PublicKey.from_public_bytes(enc[MLKEM_CIPHERTEXT_SIZE:])
                self._x25519.exchange(share)
            except ValueError:
                raise HeaderError(
                    "malformed mlkem768x25519 stanza: low-order X25519 share"
                ) from None
            try:
                return _SUITE.decrypt(enc + s.body, self._key, info=PQ_LABEL)
            except InvalidTag:
                continue
        return None

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._seed).upper()

    def __repr__(self) -> str:
        return f"HybridIdentity({str(self.recipient)[:24]}…)"
