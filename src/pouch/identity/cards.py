"""Identities (secret) and cards (public): SPEC.md sections 3.3 and 5.1.

An identity is a principal's three keys: an Ed25519 signing key, and an age
encryption identity with an X25519 and a post-quantum mlkem768x25519 key.
Its card is the public half, self-signed as a DSSE statement of kind
"card": what is handed over in person, and what every other statement and
letter refers to by the signing key's fingerprint.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .. import statements
from .._fields import is_rfc3339, rfc3339
from ..age import (
    HybridIdentity,
    HybridRecipient,
    X25519Identity,
    X25519Recipient,
    bech32,
    parse_identity,
    parse_recipient,
)
from ..errors import KeyFormatError, StatementError

CARD_KIND = "card"
CARD_VERSION = 1
SIGNING_KEY_HRP = "POUCH-SIGNING-KEY-"
FINGERPRINT_LABEL = b"pouch/fingerprint/v1\x00"
SAFETY_NUMBER_LABEL = b"pouch/safety-number/v1\x00"
MAX_NAME = 100

Rand = Callable[[int], bytes]


def fingerprint(signing_key: bytes) -> str:
    """The signing key's fingerprint: 64 hex digits (SPEC.md 3.3)."""
    return blake3.blake3(FINGERPRINT_LABEL + signing_key).hexdigest()


def safety_number(a: bytes, b: bytes | None = None) -> list[str]:
    """Twelve groups of five digits, the same whichever side computes them.

    Derived from both signing keys in a fixed order (the smaller first), so
    Kim and Trump read the same number; with one key, from that key alone.
    """
    keys = sorted([a, b]) if b is not None else [a]
    digest = blake3.blake3(SAFETY_NUMBER_LABEL + b"".join(keys)).digest(length=60)
    return [f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 60, 5)]


def check_name(name: str) -> str:
    # Names are shown to people: no control characters (C0, C1), no
    # invisible formatting (bidi overrides and the like, category Cf), no
    # line or paragraph separators, which could disguise one name as another.
    if (
        not 1 <= len(name) <= MAX_NAME
        or name != name.strip()
        or any(
            unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for ch in name
        )
    ):
        raise KeyFormatError(
            "a name is 1 to 100 printable characters, without leading or trailing spaces"
        )
    return name


@functools.lru_cache(maxsize=256)
def _parsed_card(data: bytes) -> Card:
    """Cards are parsed (and their signature verified) once per process: a
    command reads the same few again and again. A Card is immutable."""
    try:
        env = statements.decode(data)
    except StatementError:
        raise StatementError(
            "this is not a pouch card", "a card is what 'pouch card' writes: a short JSON file"
        ) from None
    if env.payload_type != statements.payload_type(CARD_KIND):
        raise _another_statement(env.payload_type)
    payload = statements.verify(env, CARD_KIND, CARD_VERSION, _card_signer)
    return Card._from_payload(payload, env)


# What to do with a statement given where a card was expected.
_ELSEWHERE = {
    "credential": "keep it with 'pouch credentials add FILE'",
    "revocation": "keep it with 'pouch credentials add FILE'",
    "scope": "it goes with its credential: 'pouch credentials add CREDENTIAL --scope FILE'",
}


def _another_statement(ptype: str) -> StatementError:
    kind = ptype.removeprefix(statements.PAYLOAD_TYPE_PREFIX).removesuffix("+json")
    if ptype.startswith(statements.PAYLOAD_TYPE_PREFIX) and kind in _ELSEWHERE:
        return StatementError(f"this is a {kind}, not a card", _ELSEWHERE[kind])
    return StatementError("this is not a pouch card", "a card is what 'pouch card' writes")


@dataclass(frozen=True)
class Card:
    """A verified card."""

    name: str
    signing_key: bytes
    x25519: X25519Recipient
    pq: HybridRecipient | None
    created: str
    envelope: statements.Envelope = field(repr=False)  # the signed bytes: long

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_key)

    def encode(self) -> bytes:
        return self.envelope.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Card:
        """Parse and verify a card; raises StatementError."""
        return _parsed_card(bytes(data))

    @classmethod
    def _from_payload(cls, p: dict[str, Any], env: statements.Envelope) -> Card:
        if set(p) != {"v", "name", "created", "signing_key", "age"}:
            raise StatementError("malformed card: unexpected fields")
        age = p["age"]
        if (
            not isinstance(age, dict)
            or not set(age) <= {"x25519", "mlkem768x25519"}
            or not all(isinstance(v, str) for v in age.values())
        ):
            raise StatementError("malformed card: bad age recipients")
        try:
            name = check_name(p["name"]) if isinstance(p["name"], str) else ""
            x = parse_recipient(age.get("x25519", ""))
            pq = parse_recipient(age["mlkem768x25519"]) if "mlkem768x25519" in age else None
        except KeyFormatError as e:
            raise StatementError(f"malformed card: {e.message}") from None
        if not name or not isinstance(x, X25519Recipient):
            raise StatementError("malformed card: a name and an X25519 recipient are required")
        if pq is not None and not isinstance(pq, HybridRecipient):
            raise StatementError("malformed card: bad post-quantum recipient")
        created = p["created"]
        if not is_rfc3339(created):
            raise StatementError("malformed card: bad creation time")
        return cls(name, _card_signer(p)[0], x, pq, created, env)


def _card_signer(p: dict[str, Any]) -> list[bytes]:
    return [statements.parse_key_field(p.get("signing_key"), "signing")]


class Identity:
    """A principal's secret keys, with its name and creation time."""

    def __init__(
        self,
        name: str,
        created: str,
        signing: Ed25519PrivateKey,
        x25519: X25519Identity,
        pq: HybridIdentity,
    ) -> None:
        self.name = check_name(name)
        self.created = created
        self.signing = signing
        self.x25519 = x25519
        self.pq = pq
        self.signing_key = signing.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, name: str, now: datetime | None = None, rand: Rand = os.urandom) -> Identity:
        return cls(
            name,
            rfc3339(now or datetime.now(UTC)),
            Ed25519PrivateKey.from_private_bytes(rand(32)),
            X25519Identity.generate(rand),
            HybridIdentity.generate(rand),
        )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_key)

    def card(self) -> Card:
        payload = {
            "v": CARD_VERSION,
            "name": self.name,
            "created": self.created,
            "signing_key": statements.key_field(self.signing_key),
            "age": {
                "x25519": str(self.x25519.recipient),
                "mlkem768x25519": str(self.pq.recipient),
            },
        }
        env = statements.sign(CARD_KIND, payload, [(self.fingerprint, self.signing)])
        return Card._from_payload(payload, env)

    # --- the secret key file (SPEC.md 5) -------------------------------------

    def secret_text(self) -> str:
        seed = self.signing.private_bytes_raw()
        return (
            f"# pouch identity: {self.name}\n"
            f"# created: {self.created}\n"
            f"# fingerprint: {self.fingerprint}\n"
            f"{bech32.encode(SIGNING_KEY_HRP, seed).upper()}\n"
            f"{self.pq}\n"
            f"{self.x25519}\n"
        )

    @classmethod
    def from_secret_text(cls, text: str, card: Card) -> Identity:
        """The identity whose keys are in text and whose public half is card."""
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        if len(lines) != 3:
            raise KeyFormatError("malformed identity file: expected three keys")
        try:
            hrp, seed = bech32.decode(lines[0])
        except ValueError:
            hrp, seed = "", b""
        if hrp != SIGNING_KEY_HRP or len(seed) != 32:
            raise KeyFormatError("malformed identity file: bad signing key")
        pq, x = parse_identity(lines[1]), parse_identity(lines[2])
        if not isinstance(pq, HybridIdentity) or not isinstance(x, X25519Identity):
            raise KeyFormatError("malformed identity file: bad age keys")
        identity = cls(card.name, card.created, Ed25519PrivateKey.from_private_bytes(seed), x, pq)
        if (
            identity.signing_key != card.signing_key
            or identity.x25519.recipient != card.x25519
            or identity.pq.recipient != card.pq
        ):
            raise KeyFormatError("the identity file does not belong to this home's card")
        return identity

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, {self.fingerprint[:16]})"
