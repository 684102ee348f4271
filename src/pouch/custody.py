"""Custody: handovers and their acceptances (SPEC.md sections 3.7 to 3.9).

A handover is a statement by the holder of a pouch (the giver) that it
handed the envelope to someone (the taker), at a time and, if they wish, a
place; the taker's acceptance is a statement of its own that countersigns
it. Both are appended to the container's trailer as records; nothing is
rewritten. The links are chained: each handover names the hash of the
acceptance before it, each acceptance the hash of its handover, and every
hash is taken over the statement's PAE bytes.

This module builds and parses the statements and checks the chain's shape
(one envelope, order, continuity, countersignatures, times). Who may hold
the pouch (credentials, revocations) is judged by the caller with what it
knows: a guard at the door, or the recipient.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import _canonical, statements
from .container import Container
from .credentials import Credential, Revocation, Scope
from .errors import StatementError
from .identity import Identity, fingerprint, is_rfc3339, rfc3339

HANDOVER_KIND = "handover"
ACCEPTANCE_KIND = "acceptance"
VERSION = 1
CHAIN_LABEL = b"pouch/custody/chain/v1\x00"
MAX_TEXT = 200  # place and note

# Trailer record types (SPEC.md 4).
RECORD_CREDENTIAL = 1
RECORD_HANDOVER = 2
RECORD_ACCEPTANCE = 3
RECORD_REVOCATION = 4


def chain_hash(envelope: statements.Envelope) -> str:
    """What the next link names: BLAKE3 over the statement's PAE bytes."""
    return blake3.blake3(CHAIN_LABEL + envelope.pae()).hexdigest()


def _hex64(value: object, what: str) -> str:
    if not statements.is_hex64(value):
        raise StatementError(f"malformed custody statement: bad {what}")
    return str(value)


def _party(p: dict[str, Any], role: str) -> bytes:
    return statements.parse_key_field(p.get(role), role)


def _fields(p: dict[str, Any], required: set[str], optional: set[str], kind: str) -> None:
    if not required <= set(p) <= required | optional:
        raise StatementError(f"malformed {kind}: unexpected fields")


def _text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_TEXT
        or any(not ch.isprintable() for ch in value)
    ):
        raise StatementError(f"malformed custody statement: bad {what}")
    return value


def _when(value: object) -> str:
    if not isinstance(value, str) or not is_rfc3339(value):
        raise StatementError("malformed custody statement: bad time")
    return value


@dataclass(frozen=True)
class Handover:
    envelope: str  # the envelope id
    seq: int  # 1 for the first handover
    prev: str | None  # chain hash of the acceptance before; None for the first
    giver: bytes
    taker: bytes
    time: str
    place: str | None
    note: str | None
    credentials: tuple[str, ...]  # ids of the credentials a verifier needs
    statement: statements.Envelope

    @property
    def hash(self) -> str:
        return chain_hash(self.statement)

    @classmethod
    def from_bytes(cls, data: bytes) -> Handover:
        env = statements.decode(data)
        p = statements.verify(
            env,
            HANDOVER_KIND,
            VERSION,
            lambda p: [statements.parse_key_field(p.get("giver"), "giver")],
        )
        _fields(p, {"v", "envelope", "seq", "prev", "giver", "taker", "time", "credentials"},
                {"place", "note"}, "handover")  # fmt: skip
        seq = p["seq"]
        if not _canonical.is_int(seq) or not 1 <= seq <= 1_000_000:
            raise StatementError("malformed handover: bad sequence number")
        prev = None if p["prev"] is None else _hex64(p["prev"], "previous link")
        if (seq == 1) != (prev is None):
            raise StatementError("malformed handover: only the first has no previous link")
        creds = p["credentials"]
        if not isinstance(creds, list) or len(creds) > 100:
            raise StatementError("malformed handover: bad credentials")
        giver, taker = (
            statements.parse_key_field(p["giver"], "giver"),
            _party(p, "taker"),
        )
        if giver == taker:
            raise StatementError("malformed handover: the giver hands over to itself")
        return cls(
            _hex64(p["envelope"], "envelope id"),
            seq,
            prev,
            giver,
            taker,
            _when(p["time"]),
            _text(p.get("place"), "place"),
            _text(p.get("note"), "note"),
            tuple(_hex64(c, "credential id") for c in creds),
            env,
        )


@dataclass(frozen=True)
class Acceptance:
    handover: str  # chain hash of the handover it countersigns
    taker: bytes
    time: str
    place: str | None
    statement: statements.Envelope

    @property
    def hash(self) -> str:
        return chain_hash(self.statement)

    @classmethod
    def from_bytes(cls, data: bytes) -> Acceptance:
        env = statements.decode(data)
        p = statements.verify(
            env,
            ACCEPTANCE_KIND,
            VERSION,
            lambda p: [statements.parse_key_field(p.get("taker"), "taker")],
        )
        _fields(p, {"v", "handover", "taker", "time"}, {"place"}, "acceptance")
        return cls(
            _hex64(p["handover"], "handover"),
            _party(p, "taker"),
            _when(p["time"]),
            _text(p.get("place"), "place"),
            env,
        )


def hand_over(
    giver: Identity,
    envelope: str,
    taker: bytes,
    when: datetime,
    previous: Acceptance | None = None,
    seq: int = 1,
    place: str | None = None,
    note: str | None = None,
    credentials: Sequence[str] = (),
) -> Handover:
    payload: dict[str, Any] = {
        "v": VERSION,
        "envelope": envelope,
        "seq": seq,
        "prev": previous.hash if previous else None,
        "giver": statements.key_field(giver.signing_key),
        "taker": statements.key_field(taker),
        "time": rfc3339(when),
        "credentials": list(credentials),
    }
    if place is not None:
        payload["place"] = place
    if note is not None:
        payload["note"] = note
    env = statements.sign(HANDOVER_KIND, payload, [(giver.fingerprint, giver.signing)])
    return Handover.from_bytes(env.encode())


def accept(
    taker: Identity, handover: Handover, when: datetime, place: str | None = None
) -> Acceptance:
    if handover.taker != taker.signing_key:
        raise StatementError("this handover is to someone else: only its taker can accept it")
    payload: dict[str, Any] = {
        "v": VERSION,
        "handover": handover.hash,
        "taker": statements.key_field(taker.signing_key),
        "time": rfc3339(when),
    }
    if place is not None:
        payload["place"] = place
    env = statements.sign(ACCEPTANCE_KIND, payload, [(taker.fingerprint, taker.signing)])
    return Acceptance.from_bytes(env.encode())


@dataclass
class Link:
    handover: Handover
    acceptance: Acceptance | None = None

    @property
    def giver(self) -> str:
        return fingerprint(self.handover.giver)

    @property
    def taker(self) -> str:
        return fingerprint(self.handover.taker)


@dataclass
class Chain:
    """The custody chain of one envelope, as its trailer tells it."""

    envelope: str
    links: list[Link] = field(default_factory=list)
    # Each problem is a sentence a person can act on; an empty list is a
    # chain whose shape holds (who held it is judged apart).
    problems: list[str] = field(default_factory=list)
    forks: list[tuple[int, str]] = field(default_factory=list)  # (seq, prev)

    @property
    def head(self) -> str | None:
        """The hash of the last statement: an accepted chain's head."""
        if not self.links:
            return None
        last = self.links[-1]
        return (last.acceptance or last.handover).hash

    @property
    def holder(self) -> bytes | None:
        """Who holds the pouch now: the last taker that accepted it."""
        for link in reversed(self.links):
            if link.acceptance is not None:
                return link.handover.taker
        return None


def build_chain(envelope: str, records: Sequence[Handover | Acceptance]) -> Chain:
    """Check the custody records, in trailer order, as one chain: each for
    this envelope; handover, acceptance, handover...; each handover naming
    the acceptance before it and given by its taker; each acceptance by the
    taker, of the handover before it; times never going back. A second
    handover naming a link already followed is a fork."""
    chain = Chain(envelope)
    seen: set[str] = set()
    followed: set[str | None] = set()  # the prev of every handover taken in
    last_time = ""
    for i, record in enumerate(records, 1):
        where = f"custody record {i}"
        if record.hash in seen:
            chain.problems.append(f"{where} is a duplicate")
            continue
        seen.add(record.hash)
        if isinstance(record, Handover):
            if record.envelope != envelope:
                chain.problems.append(f"{where} is a handover of another envelope (spliced)")
                continue
            previous = chain.links[-1] if chain.links else None
            if record.prev in followed:
                chain.forks.append((record.seq, record.prev or ""))
                chain.problems.append(
                    f"custody fork: {where} is a second handover number {record.seq} "
                    f"after the same link"
                )
                continue
            if previous is None:
                if record.seq != 1:
                    chain.problems.append(f"{where}: the chain does not start at handover 1")
            else:
                if previous.acceptance is None:
                    chain.problems.append(
                        f"{where}: handover {previous.handover.seq} was never accepted "
                        "(its countersignature is missing)"
                    )
                elif (
                    record.prev != previous.acceptance.hash
                    or record.seq != previous.handover.seq + 1
                ):
                    chain.problems.append(
                        f"{where} does not follow the link before it (reordered?)"
                    )
                if record.giver != previous.handover.taker:
                    chain.problems.append(
                        f"{where}: the giver is not the one who took the pouch before"
                    )
            if record.time < last_time:
                chain.problems.append(f"{where}: its time goes backwards ({record.time})")
            last_time = max(last_time, record.time)
            followed.add(record.prev)
            chain.links.append(Link(record))
        else:
            link = chain.links[-1] if chain.links else None
            if link is None or record.handover != link.handover.hash:
                chain.problems.append(
                    f"{where} countersigns no handover before it (reordered or spliced)"
                )
                continue
            if link.acceptance is not None:
                chain.problems.append(f"{where}: handover {link.handover.seq} is accepted twice")
                continue
            if record.taker != link.handover.taker:
                chain.problems.append(f"{where} is not signed by the handover's taker")
                continue
            if record.time < last_time:
                chain.problems.append(f"{where}: its time goes backwards ({record.time})")
            last_time = max(last_time, record.time)
            link.acceptance = record
    return chain


# --- what a trailer says, and what a verifier makes of it ----------------------


@dataclass
class Trailer:
    """The statements found in a container's trailer."""

    records: list[Handover | Acceptance] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)
    revocations: list[Revocation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # records that do not verify

    @property
    def envelope(self) -> str | None:
        """The envelope id the first handover names (None: no handover)."""
        first = next((r for r in self.records if isinstance(r, Handover)), None)
        return first.envelope if first else None


def read_trailer(c: Container) -> Trailer:
    t = Trailer()
    for i, ref in enumerate(c.records, 1):
        body = c.read_record(ref).body
        try:
            if ref.type == RECORD_HANDOVER:
                t.records.append(Handover.from_bytes(body))
            elif ref.type == RECORD_ACCEPTANCE:
                t.records.append(Acceptance.from_bytes(body))
            elif ref.type == RECORD_CREDENTIAL:
                credential = Credential.from_bytes(body)
                t.credentials[credential.id] = credential
            elif ref.type == RECORD_REVOCATION:
                t.revocations.append(Revocation.from_bytes(body))
        except StatementError as e:
            t.problems.append(f"trailer record {i} does not verify: {e.message}")
    return t


@dataclass
class Verdict:
    chain: Chain
    problems: list[str]  # the chain's shape, and records that do not verify
    flags: list[str]  # who held it: accreditation
    accredited: dict[int, str]  # seq -> how its taker was accredited

    @property
    def clean(self) -> bool:
        return not self.problems and not self.flags


def judge(
    envelope: str,
    trailer: Trailer,
    principals: set[bytes],
    credentials: Sequence[Credential] = (),
    revoked: Callable[[Credential], Revocation | None] = lambda c: None,
) -> Verdict:
    """The guard's check, without decrypting: the chain's shape; the first
    giver a principal the verifier knows (principals), or an envoy one of
    them accredited; and every taker accredited when it took the pouch (the
    last may instead be a principal it knows): an envoy of that principal,
    or a receiver of a known principal, by a credential (in the trailer or
    the verifier's register) covering the handover and its acceptance, and
    not revoked as far as revoked() knows (the trailer's revocations count
    too). A guard cannot see a credential's scope (it travels sealed): the
    recipient checks it (recipient_flags)."""
    chain = build_chain(envelope, trailer.records)
    problems = [*trailer.problems, *chain.problems]
    flags: list[str] = []
    accredited: dict[int, str] = {}
    valid = _Accreditation(credentials, trailer, revoked)

    if not chain.links:
        return Verdict(chain, problems, ["no custody: nobody signed for this pouch"], accredited)
    first = chain.links[0].handover
    principal = first.giver
    if principal not in principals:
        issuer = next(
            (c for c in valid.find(first.giver, [first.time]) if c.principal in principals
             and c.role == "envoy"),
            None,
        )  # fmt: skip
        if issuer is None:
            flags.append(
                f"the first giver {fingerprint(first.giver)[:16]} is neither a principal you "
                "know nor an envoy one of them accredited"
            )
        else:
            principal = issuer.principal
    for link in chain.links:
        h, a = link.handover, link.acceptance
        times = [h.time] + ([a.time] if a else [])
        if h.taker in principals and link is chain.links[-1]:
            # The last taker may be a principal itself (the recipient); a
            # principal carrying a letter on is an agent like any other.
            accredited[h.seq] = "a principal you know"
            continue

        def fits(c: Credential) -> bool:
            return (c.role == "envoy" and c.principal == principal) or (
                c.role == "receiver" and c.principal in principals
            )

        found = next((c for c in valid.find(h.taker, times) if fits(c)), None)
        if found is None:
            flags.append(
                f"handover {h.seq}: {fingerprint(h.taker)[:16]} "
                f"{valid.why_not(h.taker, times, fits)}, as far as this register knows"
            )
        else:
            scoped = " (scoped: the recipient checks it)" if found.scope else ""
            accredited[h.seq] = (
                f"{found.role} of {found.principal_fingerprint[:16]} until {found.until}{scoped}"
            )
    return Verdict(chain, problems, flags, accredited)


class _Accreditation:
    """The credentials a verifier knows of (its register's and the
    trailer's), less those revoked (by its register or the trailer)."""

    def __init__(
        self,
        credentials: Sequence[Credential],
        trailer: Trailer,
        revoked: Callable[[Credential], Revocation | None],
    ) -> None:
        self._known = {**{c.id: c for c in credentials}, **trailer.credentials}
        self._trailer = trailer
        self._revoked = revoked

    def find(self, agent: bytes, times: Sequence[str]) -> list[Credential]:
        """Credentials for agent covering every one of times, not revoked."""
        return [
            c
            for c in self.issued_to(agent)
            if all(c.covers(t) for t in times) and not self._is_revoked(c)
        ]

    def issued_to(self, agent: bytes) -> list[Credential]:
        """Every credential for agent, whatever its time or revocation."""
        return [c for c in self._known.values() if c.agent == agent]

    def _is_revoked(self, c: Credential) -> bool:
        return self._revoked(c) is not None or any(r.revokes(c) for r in self._trailer.revocations)

    def why_not(
        self, agent: bytes, times: Sequence[str], fits: Callable[[Credential], bool]
    ) -> str:
        """Why find() has no credential for agent that fits: the reason a
        person can act on (expired, not yet valid, revoked, none at all)."""
        close = [c for c in self.issued_to(agent) if fits(c)]
        for c in close:
            if not self._is_revoked(c):
                late = [t for t in times if t > c.until]
                if late:
                    return f"held the pouch at {late[0]}, after its credential expired ({c.until})"
                return f"held the pouch at {times[0]}, before its credential began ({c.valid_from})"
        if close:
            return "held the pouch under a credential that was revoked"
        return f"was not accredited for the time it held the pouch ({times[0]})"


def recipient_flags(
    verdict: Verdict,
    trailer: Trailer,
    sender: bytes,
    me: bytes,
    credentials: Sequence[Credential],
    scopes: dict[str, Scope],
    revoked: Callable[[Credential], Revocation | None] = lambda c: None,
) -> list[str]:
    """What only the recipient can check, once the letter verified: every
    holder is the letter's signed sender, an envoy the sender accredited
    whose scope covers this recipient (with the opening it received
    sealed, from scopes), this recipient, or a receiver it accredited; the
    sender (or its envoy) gave it first; and the chain ends with this
    recipient or its receiver, accepted."""
    links = verdict.chain.links
    if not links:
        return []
    flags = []
    valid = _Accreditation(credentials, trailer, revoked)
    mine = fingerprint(me)

    def holder_ok(key: bytes, times: list[str]) -> bool:
        if key in (sender, me):
            return True
        return any(
            (c.role == "envoy" and c.principal == sender and c.allows(scopes.get(c.id), mine))
            or (c.role == "receiver" and c.principal == me)
            for c in valid.find(key, times)
        )

    first = links[0].handover
    if first.giver != sender and not holder_ok(first.giver, [first.time]):
        flags.append(
            "the first giver is neither the letter's sender nor an envoy the sender accredited"
            " for letters to you"
        )
    for link in links:
        h, a = link.handover, link.acceptance
        if not holder_ok(h.taker, [h.time] + ([a.time] if a else [])):
            flags.append(
                f"handover {h.seq}: the taker is neither the sender's envoy for letters to you "
                "(its scope, if any, checked) nor you nor your receiver"
            )
    last = links[-1]
    if last.acceptance is None:
        flags.append(f"handover {last.handover.seq} was never accepted")
    elif last.handover.taker != me and not any(
        c.role == "receiver" and c.principal == me
        for c in valid.find(last.handover.taker, [last.handover.time, last.acceptance.time])
    ):
        flags.append("the chain ends with someone who is neither you nor a receiver you accredited")
    return flags


def delivery(
    verdict: Verdict,
    trailer: Trailer,
    me: bytes,
    principals: set[bytes],
    credentials: Sequence[Credential],
    revoked: Callable[[Credential], Revocation | None] = lambda c: None,
) -> tuple[bytes | None, Credential | None, list[str]]:
    """What the sender makes of a custody receipt: to whom its pouch was
    delivered (the principal: the last taker itself, or the one whose
    receiver it is), the receiver's credential if a receiver took it, and
    flags. The sender (or its envoy) gave it first; the last handover is
    accepted, not by the sender's own envoy, but by a correspondent the
    sender knows or by a receiver one of them accredited, covering the
    handover and acceptance."""
    links = verdict.chain.links
    if not links:
        return None, None, ["no custody: nobody signed for this pouch"]
    flags = []
    valid = _Accreditation(credentials, trailer, revoked)
    first = links[0].handover
    if first.giver != me and not any(
        c.role == "envoy" and c.principal == me for c in valid.find(first.giver, [first.time])
    ):
        flags.append("the first giver is neither you nor an envoy you accredited")
    last = links[-1]
    if last.acceptance is None:
        flags.append(f"handover {last.handover.seq} was never accepted: not delivered")
        return None, None, flags
    taker = last.handover.taker
    times = [last.handover.time, last.acceptance.time]
    # Any envoy credential I ever gave that key, even one expired or
    # revoked: a pouch held by my (former) envoy was not delivered.
    if any(c.role == "envoy" and c.principal == me for c in valid.issued_to(taker)):
        flags.append("the last taker is your own envoy: the pouch is in transit, not delivered")
        return None, None, flags
    if taker in principals and taker != me:
        return taker, None, flags
    receiver = next(
        (c for c in valid.find(taker, times)
         if c.role == "receiver" and c.principal in principals and c.principal != me),
        None,
    )  # fmt: skip
    if receiver is None:
        flags.append(
            "the last taker is neither a correspondent you know nor a receiver one of them "
            "accredited (not revoked, as far as this register knows)"
        )
        return None, None, flags
    return receiver.principal, receiver, flags


# --- proof of possession -------------------------------------------------------

CHALLENGE_LABEL = b"pouch/custody/challenge/v1\x00"
CHALLENGE_PREFIX = "pouch-challenge-"
ANSWER_PREFIX = "pouch-answer-"


def new_challenge(rand: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh challenge for whoever presents a pouch: 32 random bytes."""
    return CHALLENGE_PREFIX + rand(32).hex()


def _challenged(challenge: str, envelope: str, head: str) -> bytes:
    if not challenge.startswith(CHALLENGE_PREFIX) or not statements.is_hex64(
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
    return ANSWER_PREFIX + statements.b64(signature)


def check_answer(challenge: str, reply: str, chain: Chain) -> bool:
    """Whether reply answers challenge with the current holder's key: a
    copy of the pouch without that key cannot."""
    if chain.holder is None or chain.head is None or not reply.startswith(ANSWER_PREFIX):
        return False
    try:
        signature = statements.unb64(reply[len(ANSWER_PREFIX) :].strip(), "answer")
        Ed25519PublicKey.from_public_bytes(chain.holder).verify(
            signature, _challenged(challenge, chain.envelope, chain.head)
        )
    except (StatementError, InvalidSignature, ValueError):
        return False
    return True
