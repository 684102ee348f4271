"""Signed statements: DSSE envelopes with Ed25519 (SPEC.md section 3).

DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, protocol
v1.0.0), signs PAE(payloadType, payload):

    "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload

with LEN the length in bytes as ASCII decimal. pouch's payloads are
canonical JSON objects with a "v" (version) field, and payloadType is
application/vnd.pouch.<kind>+json.

Verification, in this order (SPEC.md 3.2):
1. the envelope parses as canonical JSON with exactly the three DSSE fields;
2. payloadType is the one the caller expects, checked before the payload
   is parsed at all;
3. the payload parses as canonical JSON with the expected version;
4. the keys that must have signed are read from the payload itself (the
   caller says where); DSSE's keyid is unauthenticated and never used;
5. every required key has a valid signature, and every signature belongs
   to a required key: exactly those keys signed.
Chain hashes are taken over PAE bytes (pae()), not the envelope's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import _canonical
from ._fields import b64, is_int_in, unb64
from .errors import StatementError

PAYLOAD_TYPE_PREFIX = "application/vnd.pouch."
PAE_PREFIX = b"DSSEv1"
# A statement is small: a card, a credential, a handover.
MAX_ENVELOPE = 1 << 20


def payload_type(kind: str) -> str:
    return f"{PAYLOAD_TYPE_PREFIX}{kind}+json"


def pae(ptype: str, payload: bytes) -> bytes:
    t = ptype.encode("utf-8")
    return b" ".join([PAE_PREFIX, str(len(t)).encode(), t, str(len(payload)).encode(), payload])


SIGNATURE_ALG = "ed25519"


def key_field(raw: bytes) -> dict[str, str]:
    """How a payload names an Ed25519 public key."""
    return {"alg": SIGNATURE_ALG, "key": b64(raw)}


def parse_key_field(value: object, what: str) -> bytes:
    if not isinstance(value, dict) or set(value) != {"alg", "key"} or value["alg"] != SIGNATURE_ALG:
        raise StatementError(f"malformed statement: bad {what} key")
    raw = unb64(value["key"], f"{what} key", StatementError)
    if len(raw) != 32:
        raise StatementError(f"malformed statement: bad {what} key")
    return raw


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def encode(self) -> bytes:
        return _canonical.dumps(
            {
                "payload": b64(self.payload),
                "payloadType": self.payload_type,
                "signatures": [{"keyid": k, "sig": b64(s)} for k, s in self.signatures],
            }
        )


def sign(
    kind: str,
    payload: dict[str, Any],
    signers: Sequence[tuple[str, Ed25519PrivateKey]],
) -> Envelope:
    """Sign payload (a JSON object with "v") as a statement of kind.

    signers are (keyid, key) pairs; the keyid is a hint for people and is
    ignored by verification.
    """
    ptype = payload_type(kind)
    body = _canonical.dumps(payload)
    message = pae(ptype, body)
    return Envelope(ptype, body, tuple((kid, key.sign(message)) for kid, key in signers))


def decode(data: bytes) -> Envelope:
    """Parse an envelope's JSON (step 1); nothing is verified yet."""
    if len(data) > MAX_ENVELOPE:
        raise StatementError("malformed statement: larger than 1 MiB")
    try:
        obj = _canonical.loads(data)
    except _canonical.CanonicalError as e:
        raise StatementError(f"malformed statement: {e.message}") from None
    if not isinstance(obj, dict) or set(obj) != {"payload", "payloadType", "signatures"}:
        raise StatementError("malformed statement: not a DSSE envelope")
    sigs = obj["signatures"]
    if not isinstance(obj["payloadType"], str) or not isinstance(sigs, list) or not sigs:
        raise StatementError("malformed statement: not a DSSE envelope")
    signatures = []
    for s in sigs:
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
            raise StatementError("malformed statement: bad signature entry")
        signatures.append((s["keyid"], unb64(s["sig"], "signature", StatementError)))
    payload = unb64(obj["payload"], "payload", StatementError)
    return Envelope(obj["payloadType"], payload, tuple(signatures))


def verify(
    envelope: Envelope,
    kind: str,
    version: int,
    required_keys: Callable[[dict[str, Any]], Sequence[bytes]],
) -> dict[str, Any]:
    """Verify envelope as a statement of kind; return its payload.

    required_keys(payload) names the Ed25519 public keys (raw, 32 bytes)
    that must have signed. Raises StatementError unless exactly those signed.
    """
    # 2. the type first: the payload of another kind is never parsed.
    if envelope.payload_type != payload_type(kind):
        raise StatementError(f"expected a {kind} statement, got {envelope.payload_type[:80]!r}")
    # 3.
    try:
        payload = _canonical.loads(envelope.payload)
    except _canonical.CanonicalError as e:
        raise StatementError(f"malformed {kind} statement: {e.message}") from None
    if not isinstance(payload, dict) or not is_int_in(payload.get("v"), version, version):
        raise StatementError(f"unsupported {kind} statement version (this pouch reads v{version})")
    # 4.
    keys = list(required_keys(payload))
    if not keys or len(set(keys)) != len(keys):
        raise StatementError(f"malformed {kind} statement: bad list of signers")
    # 5. each required key signed, and nothing else did.
    message = envelope.pae()
    unused = list(range(len(envelope.signatures)))
    for key in keys:
        match = next((i for i in unused if _valid(key, envelope.signatures[i][1], message)), None)
        if match is None:
            raise StatementError(f"{kind} statement: a required signature is missing or invalid")
        unused.remove(match)
    if unused:
        raise StatementError(f"{kind} statement: signed by a key it does not name")
    return payload


def _valid(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
