"""Handovers, their acceptances, and the chain they make (SPEC.md
sections 3.7 to 3.9).

A handover is a statement by the holder of a pouch (the giver) that it
handed the envelope to someone (the taker), at a time and, if they wish, a
place; the taker's acceptance is a statement of its own that countersigns
it. Both are appended to the container's trailer as records; nothing is
rewritten. The links are chained: each handover names the hash of the
acceptance before it, each acceptance the hash of its handover, and every
hash is taken over the statement's PAE bytes.

This module builds and parses the statements and checks the chain's shape
(one envelope, order, continuity, countersignatures, times). Who may hold
the pouch (credentials, revocations) is judged in verdicts.py, with what
the verifier knows: a guard at the door, or the recipient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import blake3

from .. import statements
from .._fields import is_hex64, is_int_in, is_rfc3339, is_text, rfc3339
from ..errors import StatementError
from ..identity import Identity, fingerprint

HANDOVER_KIND = "handover"
ACCEPTANCE_KIND = "acceptance"
VERSION = 1
CHAIN_LABEL = b"pouch/custody/chain/v1\x00"
MAX_TEXT = 200  # place and note
MAX_HANDOVERS = 1_000_000


def chain_hash(envelope: statements.Envelope) -> str:
    """What the next link names: BLAKE3 over the statement's PAE bytes."""
    return blake3.blake3(CHAIN_LABEL + envelope.pae()).hexdigest()


def _hex64(value: object, what: str) -> str:
    if not is_hex64(value):
        raise StatementError(f"malformed custody statement: bad {what}")
    return value


def _party(p: dict[str, Any], role: str) -> bytes:
    return statements.parse_key_field(p.get(role), role)


def _fields(p: dict[str, Any], required: set[str], optional: set[str], kind: str) -> None:
    if not required <= set(p) <= required | optional:
        raise StatementError(f"malformed {kind}: unexpected fields")


def _text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not is_text(value, MAX_TEXT):
        raise StatementError(f"malformed custody statement: bad {what}")
    return value


def _when(value: object) -> str:
    if not is_rfc3339(value):
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
    statement: statements.Envelope = field(repr=False)  # the signed bytes: long

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
        if not is_int_in(seq, 1, MAX_HANDOVERS):
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
    statement: statements.Envelope = field(repr=False)  # the signed bytes: long

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
