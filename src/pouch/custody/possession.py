"""Proof of possession (SPEC.md section 3.10): a guard's fresh challenge,
answered with the key of the pouch's current holder, bound to its envelope
and chain head. A copy of the pouch, without that key, cannot answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._fields import b64, is_hex64, unb64
from ..errors import StatementError
from ..identity import Identity
from .chain import Chain

CHALLENGE_LABEL = b"pouch/custody/challenge/v1\x00"
CHALLENGE_PREFIX = "pouch-challenge-"
ANSWER_PREFIX = "pouch-answer-"


def new_challenge(rand: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh challenge for whoever presents a pouch: 32 random bytes."""
    return CHALLENGE_PREFIX + rand(32).hex()


def _challenged(challenge: str, envelope: str, head: str) -> bytes:
    if not challenge.startswith(CHALLENGE_PREFIX) or not is_hex64(
        challenge[len(CHALLENGE_PREFIX) :]
    ):
        raise StatementError("that is not a pouch challenge")
    return (
        CHALLENGE_LABEL
        + bytes.fromhex(challenge[len(CHALLENGE_PREFIX) :])
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
