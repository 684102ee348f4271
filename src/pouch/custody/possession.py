"""Proof of possession (SPEC.md section 3.10): a guard's fresh challenge,
answered with the key of the pouch's current holder, bound to its envelope
and chain head. A copy of the pouch, without that key, cannot answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._fields import b64, is_hex64, unb64
from ..errors import StatementError
from ..identity import Identity
from .chain import Chain

CHALLENGE_LABEL = b"pouch/custody/challenge/v1\x00"
CHALLENGE_PREFIX = "pouch-challenge-"
ANSWER_PREFIX = "pouch-answer-"


# The spoken form (SPEC.md 3.10): 80 random bits as 25 digits, which a
# guard reads aloud; the challenge bytes are derived from them.
SPOKEN_CONTEXT = "pouch/custody/spoken-challenge/v1"
SPOKEN_BYTES = 10
SPOKEN_DIGITS = 25


def new_challenge(rand: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh challenge for whoever presents a pouch: 32 random bytes."""
    return CHALLENGE_PREFIX + rand(32).hex()


def new_spoken_challenge(rand: Callable[[int], bytes] = os.urandom) -> tuple[str, str]:
    """A fresh challenge short enough to read aloud: its spoken form (five
    groups of five digits) and the same challenge written out."""
    digits = str(int.from_bytes(rand(SPOKEN_BYTES), "big")).zfill(SPOKEN_DIGITS)
    spoken = " ".join(digits[i : i + 5] for i in range(0, SPOKEN_DIGITS, 5))
    return spoken, challenge_of(spoken)


def challenge_of(text: str) -> str:
    """The challenge text gives, written out: a written challenge as it is,
    or the spoken digits (spaces and dashes between them allowed)."""
    text = text.strip()
    if text.startswith(CHALLENGE_PREFIX):
        if not is_hex64(text[len(CHALLENGE_PREFIX) :]):
            raise StatementError("that is not a pouch challenge")
        return text
    digits = "".join(ch for ch in text if ch not in " -")
    if len(digits) != SPOKEN_DIGITS or not digits.isascii() or not digits.isdigit():
        raise StatementError(
            "that is not a pouch challenge",
            f"a challenge is {CHALLENGE_PREFIX}… or {SPOKEN_DIGITS} digits, as the guard gave it",
        )
    value = int(digits)
    if value >= 1 << (8 * SPOKEN_BYTES):
        raise StatementError("that is not a pouch challenge: the digits were misheard")
    derived = blake3.blake3(value.to_bytes(SPOKEN_BYTES, "big"), derive_key_context=SPOKEN_CONTEXT)
    return CHALLENGE_PREFIX + derived.hexdigest()


def _challenged(challenge: str, envelope: str, head: str) -> bytes:
    written = challenge_of(challenge)
    return (
        CHALLENGE_LABEL
        + bytes.fromhex(written[len(CHALLENGE_PREFIX) :])
        + bytes.fromhex(envelope)
        + bytes.fromhex(head)
    )


def answer(holder: Identity, challenge: str, chain: Chain) -> str:
    """Sign the challenge, bound to this envelope and chain head, with the
    key of the pouch's current holder (which must be holder's)."""
    if chain.holder != holder.signing_key or chain.head is None:
        raise StatementError("you are not the pouch's current holder: you cannot answer for it")
    signature = holder.signing.sign(_challenged(challenge, chain.envelope, chain.head))
    return ANSWER_PREFIX + b64(signature)


def check_answer(challenge: str, reply: str, chain: Chain) -> bool:
    """Whether reply answers challenge with the current holder's key: a
    copy of the pouch without that key cannot."""
    if chain.holder is None or chain.head is None or not reply.startswith(ANSWER_PREFIX):
        return False
    try:
        signature = unb64(reply[len(ANSWER_PREFIX) :].strip(), "answer", StatementError)
        Ed25519PublicKey.from_public_bytes(chain.holder).verify(
            signature, _challenged(challenge, chain.envelope, chain.head)
        )
    except (StatementError, InvalidSignature, ValueError):
        return False
    return True
