"""Identities and cards (SPEC.md sections 3.3 and 5.1).

An identity is a principal's secret keys: an Ed25519 signing key, and age
keys (X25519 and post-quantum mlkem768x25519). Its card is the public half,
self-signed: what is handed over in person, and what every statement and
letter names by the signing key's fingerprint.
"""

from __future__ import annotations

from .cards import Card, Identity, check_name, fingerprint, safety_number

__all__ = ["Card", "Identity", "check_name", "fingerprint", "safety_number"]
