"""Accreditation: credentials and revocations (SPEC.md sections 3.4 to 3.6).

A credential is a statement signed by a principal: "this key carries my
letters in this period" (role envoy) or "this key may accept letters on my
behalf" (role receiver). It is short-lived, it never names the principal's
correspondents in the clear, and a principal cannot accredit itself.

Scope ("only for letters to these correspondents") must not reveal
recipients to carriers, yet the copy that travels in a trailer must be the
signed one. So the credential signs a commitment to its scope, a salted
BLAKE3 of the correspondents' fingerprints, and the opening (salt and
fingerprints) travels sealed, inside a letter, to whoever must check it.
An unscoped credential commits to nothing.

A revocation is a statement by the same principal naming a credential by
its id. Revocations travel by letter and live in the register: a revoked
envoy would strip one from a trailer. "Not revoked" therefore always means
"not revoked as far as this register knows".
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

import blake3

from .. import _canonical, statements
from .._fields import b64, is_hex64, is_int_in, is_rfc3339, read_object, rfc3339, unb64
from ..errors import KeyFormatError, StatementError
from ..identity import Card, Identity, check_name, fingerprint

CREDENTIAL_KIND = "credential"
REVOCATION_KIND = "revocation"
SCOPE_KIND = "scope"
VERSION = 1
# An envoy carries its principal's letters; a receiver accepts letters on
# its principal's behalf.
Role = Literal["envoy", "receiver"]
STATEMENT_ID_LABEL = b"pouch/statement/id/v1\x00"
SCOPE_LABEL = b"pouch/credential/scope/v1\x00"
SALT_SIZE = 16
# Credentials are short-lived: longer than this needs the issuer to say so.
DEFAULT_DAYS = 30
MAX_SCOPE = 1000

Rand = Callable[[int], bytes]


def statement_id(envelope: statements.Envelope) -> str:
    """A statement's id: BLAKE3 over its PAE bytes (SPEC.md 3.4), so that
    neither the envelope's JSON nor its keyids change it."""
    return blake3.blake3(STATEMENT_ID_LABEL + envelope.pae()).hexdigest()


def _issuer(p: dict[str, Any]) -> list[bytes]:
    """Who must have signed a credential or a revocation: its principal."""
    return [statements.parse_key_field(p.get("principal"), "principal")]


def _time(value: object, what: str) -> str:
    if not is_rfc3339(value):
        raise StatementError(f"malformed statement: bad {what} time")
    return value


@dataclass(frozen=True)
class Scope:
    """The opening of a credential's scope: which correspondents' letters
    it covers. Travels sealed; checked against the credential's commitment."""

    salt: bytes
    fingerprints: tuple[str, ...]  # sorted

    def commitment(self) -> str:
        h = blake3.blake3(SCOPE_LABEL + self.salt)
        for fp in self.fingerprints:
            h.update(bytes.fromhex(fp))
        return h.hexdigest()

    def encode(self) -> bytes:
        return _canonical.dumps(
            {
                "v": VERSION,
                "kind": SCOPE_KIND,
                "salt": b64(self.salt),
                "for": list(self.fingerprints),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Scope:
        p = read_object(data, "scope", StatementError, {"v", "kind", "salt", "for"})
        if (
            not is_int_in(p["v"], VERSION, VERSION)
            or p["kind"] != SCOPE_KIND
            or not isinstance(p["for"], list)
            or not 1 <= len(p["for"]) <= MAX_SCOPE
        ):
            raise StatementError("malformed scope")
        salt = unb64(p["salt"], "salt", StatementError)
        fps = p["for"]
        if len(salt) != SALT_SIZE or not all(is_hex64(f) for f in fps) or fps != sorted(set(fps)):
            raise StatementError("malformed scope")
        return cls(salt, tuple(fps))


@dataclass(frozen=True)
class Credential:
    """A verified credential."""

    principal: bytes  # the issuer's signing key
    agent: bytes  # the accredited key
    agent_name: str
    role: Role
    valid_from: str  # RFC 3339
    until: str
    scope: str | None  # the commitment, or None: any correspondent
    envelope: statements.Envelope = field(repr=False)  # the signed bytes: long

    @property
    def id(self) -> str:
        return statement_id(self.envelope)

    @property
    def principal_fingerprint(self) -> str:
        return fingerprint(self.principal)

    @property
    def agent_fingerprint(self) -> str:
        return fingerprint(self.agent)

    def encode(self) -> bytes:
        return self.envelope.encode()

    def covers(self, when: str) -> bool:
        """Whether the time when (RFC 3339) falls in its period. The strings
        compare as times: one format, UTC, fixed width."""
        return self.valid_from <= when <= self.until

    def allows(self, opening: Scope | None, correspondent: str) -> bool:
        """Whether a letter to (or from) correspondent is in scope, given the
        opening that travelled sealed (None if none did)."""
        if self.scope is None:
            return True
        if opening is None or not hmac.compare_digest(opening.commitment(), self.scope):
            return False
        return correspondent in opening.fingerprints

    @classmethod
    def from_bytes(cls, data: bytes) -> Credential:
        """Parse and verify a credential; raises StatementError."""
        env = statements.decode(data)
        p = statements.verify(env, CREDENTIAL_KIND, VERSION, _issuer)
        return cls._from_payload(p, env)

    @classmethod
    def _from_payload(cls, p: dict[str, Any], env: statements.Envelope) -> Credential:
        if set(p) != {"v", "principal", "agent", "agent_name", "role", "from", "until", "scope"}:
            raise StatementError("malformed credential: unexpected fields")
        principal, agent = (
            statements.parse_key_field(p["principal"], "principal"),
            statements.parse_key_field(p["agent"], "agent"),
        )
        if principal == agent:
            raise StatementError(
                "a self-issued credential: a principal cannot accredit itself",
                "an agent has an identity of its own (pouch init)",
            )
        if p["role"] not in get_args(Role):
            raise StatementError("malformed credential: the role is envoy or receiver")
        try:
            name = check_name(p["agent_name"]) if isinstance(p["agent_name"], str) else ""
        except KeyFormatError:
            name = ""
        if not name:
            raise StatementError("malformed credential: bad agent name")
        start, until = _time(p["from"], "start"), _time(p["until"], "end")
        if not start < until:
            raise StatementError("malformed credential: it ends before it starts")
        scope = p["scope"]
        if scope is not None and not is_hex64(scope):
            raise StatementError("malformed credential: bad scope")
        return cls(principal, agent, name, p["role"], start, until, scope, env)


def accredit(
    principal: Identity,
    agent: Card,
    role: Role,
    valid_from: datetime,
    until: datetime,
    scope: Sequence[str] = (),
    rand: Rand = os.urandom,
) -> tuple[Credential, Scope | None]:
    """Sign a credential for agent; with scope (fingerprints), also the
    opening that must travel sealed."""
    if role not in get_args(Role):
        raise StatementError("the role is envoy or receiver")
    opening = Scope(rand(SALT_SIZE), tuple(sorted(set(scope)))) if scope else None
    payload = {
        "v": VERSION,
        "principal": statements.key_field(principal.signing_key),
        "agent": statements.key_field(agent.signing_key),
        "agent_name": agent.name,
        "role": role,
        "from": rfc3339(valid_from),
        "until": rfc3339(until),
        "scope": opening.commitment() if opening else None,
    }
    env = statements.sign(CREDENTIAL_KIND, payload, [(principal.fingerprint, principal.signing)])
    return Credential._from_payload(payload, env), opening


@dataclass(frozen=True)
class Revocation:
    """A verified revocation: principal withdraws credential (an id)."""

    principal: bytes
    credential: str
    date: str
    envelope: statements.Envelope = field(repr=False)  # the signed bytes: long

    @property
    def id(self) -> str:
        return statement_id(self.envelope)

    def encode(self) -> bytes:
        return self.envelope.encode()

    def revokes(self, credential: Credential) -> bool:
        """Only the credential's own issuer can revoke it."""
        return self.credential == credential.id and self.principal == credential.principal

    @classmethod
    def from_bytes(cls, data: bytes) -> Revocation:
        env = statements.decode(data)
        p = statements.verify(env, REVOCATION_KIND, VERSION, _issuer)
        if set(p) != {"v", "principal", "credential", "date"}:
            raise StatementError("malformed revocation: unexpected fields")
        if not is_hex64(p["credential"]):
            raise StatementError("malformed revocation: bad credential id")
        principal = statements.parse_key_field(p["principal"], "principal")
        return cls(principal, p["credential"], _time(p["date"], "revocation"), env)


def revoke(principal: Identity, credential_id: str, when: datetime) -> Revocation:
    payload = {
        "v": VERSION,
        "principal": statements.key_field(principal.signing_key),
        "credential": credential_id,
        "date": rfc3339(when),
    }
    env = statements.sign(REVOCATION_KIND, payload, [(principal.fingerprint, principal.signing)])
    return Revocation.from_bytes(env.encode())
