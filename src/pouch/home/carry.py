"""Carrying a pouch (SPEC.md sections 3.7 to 3.10 and 4.1): handing it over,
accepting it, and what each party makes of its custody.

- hand_over and accept append statements to the container's trailer;
- check_custody is the guard's check, without a key: the chain, and every
  holder accredited as far as this register knows;
- custody_on_open is the recipient's, once the letter verified: the guard's
  check, and what only the recipient can check;
- check_custody_receipt is the sender's: to whom the pouch was delivered.

Every check reports problems as sentences a person can act on; none of
them hides or alters a letter.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from .. import custody
from .._fields import is_hex64, rfc3339
from .._io import atomic_output
from ..container import Container, Source, custody_receipt, loaded
from ..custody import (
    DEFAULT_DAYS,
    Credential,
    Revocation,
    Role,
    Scope,
    Verdict,
    build_chain,
    delivery,
    judge,
    read_trailer,
    recipient_flags,
    record,
)
from ..errors import (
    CustodyError,
    FileError,
    RefusedError,
    StatementError,
    UsageError,
)
from ..identity import Card, fingerprint
from .folder import Home
from .register import Contact, Register

if TYPE_CHECKING:
    from ..letter import Opened
    from .post import Post


class CustodyLink(NamedTuple):
    """One handover, and its acceptance if it came."""

    seq: int
    giver: bytes
    taker: bytes
    time: str
    place: str | None
    note: str | None
    accepted: str | None  # when
    accepted_at: str | None  # where
    accredited: str | None  # how the taker was accredited, if it was


class CustodyReport(NamedTuple):
    """What a verifier makes of a pouch's custody."""

    links: tuple[CustodyLink, ...]
    problems: tuple[str, ...]  # everything that does not hold, in words
    head: str | None  # the chain's head: what a receipt names

    @property
    def verified(self) -> bool:
        return not self.problems


def _links(verdict: Verdict) -> tuple[CustodyLink, ...]:
    return tuple(
        CustodyLink(
            link.handover.seq, link.handover.giver, link.handover.taker, link.handover.time,
            link.handover.place, link.handover.note,
            link.acceptance.time if link.acceptance else None,
            link.acceptance.place if link.acceptance else None,
            verdict.accredited.get(link.handover.seq),
        )
        for link in verdict.chain.links
    )  # fmt: skip


def principals(reg: Register, me: bytes) -> set[bytes]:
    """Whom this home knows as principals: its contacts, and itself."""
    return {c.card.signing_key for c in reg.contacts()} | {me}


def custody_on_open(home: Home, c: Container, opened: Opened, me: bytes) -> CustodyReport:
    """The custody of a letter just opened (verified): the chain's shape,
    every holder's accreditation, and what only the recipient can check
    (the first giver is the sender or its envoy, scopes, the chain ends
    with me or my receiver). A custody problem never hides the letter."""
    if not c.records:  # delivered without custody: nothing to judge
        return CustodyReport((), ("no custody: nobody signed for this pouch",), None)
    trailer = read_trailer(c)
    with home.register() as reg:
        kept = reg.credentials()
        scopes = {x.id: scope for x, scope in kept if scope is not None}
        credentials = [x for x, _ in kept]
        verdict = judge(opened.envelope_id, trailer, principals(reg, me), credentials,
                        reg.revocation)  # fmt: skip
        problems = [*verdict.problems, *verdict.flags]
        if verdict.chain.links:
            problems += recipient_flags(verdict, opened.header.sender, me, scopes)
    if trailer.envelope not in (None, opened.envelope_id):
        problems.insert(0, "the handovers name another envelope than this one")
    return CustodyReport(_links(verdict), tuple(problems), verdict.chain.head)


class Guarded(NamedTuple):
    """The guard's check of a pouch or a custody receipt (pouch custody)."""

    envelope: str  # what the ciphertext hashes to; a custody receipt's, the one it names
    matches: bool | None  # whether the handovers name it (None: a custody receipt)
    detached: bool  # a custody receipt
    verdict: Verdict
    report: CustodyReport  # its problems: the shape, the envelope, a chain cut back
    flags: tuple[str, ...]  # who held it: accreditation
    credentials: tuple[Credential, ...]  # every one this check knew of

    @property
    def verified(self) -> bool:
        return self.report.verified and not self.flags


def check_custody(home: Home | None, c: Container, cards: Sequence[Card] = ()) -> Guarded:
    """What a guard at the door can check without decrypting: the chain,
    signed by both parties at every link; its first giver a principal this
    home knows (or one of cards) or an envoy one accredited; every holder
    accredited (not revoked as far as this register knows); the ciphertext
    hashing to the envelope the handovers name; and no chain cut back past
    where this home accepted it.

    A guard needs no identity of its own: with home None, the principals
    are cards alone, and the credentials those the pouch carries."""
    given = {card.signing_key for card in cards}
    trailer = read_trailer(c)
    # A custody receipt holds no ciphertext to hash: the envelope it names.
    actual = c.detached or c.envelope_id()
    named = trailer.envelope or actual
    if home is None:
        verdict, kept = judge(named, trailer, given), None
        credentials: list[Credential] = []
    else:
        own = home.card().signing_key
        with home.register() as reg:
            credentials = [x for x, _ in reg.credentials()]
            verdict = judge(named, trailer, principals(reg, own) | given, credentials,
                            reg.revocation)  # fmt: skip
            kept = reg.custody_head(named)
    problems = list(verdict.problems)
    if named != actual:
        problems.insert(
            0,
            "the handovers name another envelope than the receipt"
            if c.detached
            else "the ciphertext does not hash to the envelope id the handovers name",
        )
    heads = {(link.acceptance or link.handover).hash for link in verdict.chain.links}
    if kept is not None and kept[0] not in heads:
        problems.append(
            f"your register accepted this pouch at handover {kept[1]}, a link this trailer "
            "no longer has: it was cut back or replaced"
        )
    report = CustodyReport(_links(verdict), tuple(problems), verdict.chain.head)
    known = (*credentials, *trailer.credentials.values())
    matches = None if c.detached else named == actual
    return Guarded(actual, matches, c.detached is not None, verdict, report,
                   tuple(verdict.flags), known)  # fmt: skip


def check_custody_receipt(home: Home, c: Container, envelope: str | None = None) -> Delivered:
    """What the sender makes of a custody receipt (SPEC.md 4.1): the chain
    verified as a guard checks it, and to whom the pouch went: a
    correspondent, or a receiver one accredited, who accepted it last. A
    receipt that proves delivery is recorded against the letter sent in
    that envelope."""
    named = c.detached or ""
    if envelope is not None and not is_hex64(envelope.lower()):
        raise UsageError("--envelope takes a full envelope id (64 hex digits)")
    if envelope is not None and named != envelope.lower():
        raise CustodyError(
            f"a custody receipt for another pouch: {named[:16]}, not {envelope[:16]}"
        )
    trailer = read_trailer(c)
    own = home.card().signing_key
    with home.register() as reg:
        known = principals(reg, own)
        credentials = [x for x, _ in reg.credentials()]
        verdict = judge(named, trailer, known, credentials, reg.revocation)
        to, receiver, flags = delivery(verdict, own, known)
        sent = [row for row in reg.letters_by_envelope(named) if row.direction == "sent"]
    if not sent:
        flags.append("this register has no letter of yours in that envelope")
    elif to is not None and fingerprint(to) not in sent[0].recipients:
        flags.append(f"the pouch went to {_name(home, to)}, whom your letter in it is not "
                     "addressed to")  # fmt: skip
    # The chain's shape, every holder's accreditation, then the delivery.
    problems = [*verdict.problems, *verdict.flags]
    if trailer.envelope not in (None, named):
        problems.insert(0, "the handovers name another envelope than the receipt")
    problems += flags
    links = verdict.chain.links
    last = links[-1] if links else None
    report = CustodyReport(_links(verdict), tuple(problems), verdict.chain.head)
    if report.verified and last is not None and last.acceptance is not None:
        with home.register() as reg:
            reg.add_receipt(sent[0].id, last.acceptance.hash, "custody",
                            fingerprint(last.handover.taker), last.acceptance.time)  # fmt: skip
    known_credentials = (*credentials, *trailer.credentials.values())
    return Delivered(named, to, receiver, report, known_credentials)


class Delivered(NamedTuple):
    """A custody receipt, read by the sender (pouch receipt)."""

    envelope: str
    to: bytes | None  # the principal it was delivered to
    receiver: Credential | None  # the receiver's credential, if a receiver accepted it
    report: CustodyReport
    credentials: tuple[Credential, ...]  # every one this check knew of

    @property
    def last(self) -> CustodyLink | None:
        return self.report.links[-1] if self.report.links else None


def _name(home: Home, key: bytes) -> str:
    names = {c.card.signing_key: c.name for c in home.contacts()}
    return names.get(key, fingerprint(key)[:16])


def _with_trailer(c: Container) -> None:
    """Custody lives in a binary .pouch's trailer: a bare age file has
    none, and armor cannot be appended to. (A custody receipt has one, but
    holds no pouch: appending to it is refused.)"""
    if c.bare or c.armored:
        raise UsageError(f"{c.path} is not a binary .pouch container: custody needs its trailer")


def _receipt_path(out: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """Where accept writes a custody receipt, checked before anything is
    accepted: a new file (never the pouch itself, never over another) in a
    folder that exists."""
    if out is None:
        return None
    if os.path.lexists(out):
        raise RefusedError(f"{out} already exists: the custody receipt goes into a new file")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise FileError(f"cannot write the custody receipt in {folder}")
    return out


class HandedOver(NamedTuple):
    seq: int
    envelope: str
    taker: Card
    credentials: int  # how many the verifier needs were added to the trailer


class Accepted(NamedTuple):
    seq: int
    envelope: str
    head: str  # the chain head, kept in the register
    receipt: str | os.PathLike[str] | None  # where the custody receipt was written
    # What does not hold of the chain, as far as this register knows (an
    # envoy nobody accredited...): accepting countersigns it all the same,
    # since the pouch is in the taker's hands, but the taker is told.
    problems: tuple[str, ...] = ()
    repaired: bool = False  # its damaged or missing archived copy was made whole from this one


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def hand_over(
    post: Post, source: Source, taker: Card, place: str | None = None, note: str | None = None
) -> HandedOver:
    with loaded(source) as c:
        return _hand_over(post, c, taker, place, note)


def _hand_over(
    post: Post, c: Container, taker: Card, place: str | None, note: str | None
) -> HandedOver:
    _with_trailer(c)
    me = post.card.signing_key
    trailer = read_trailer(c)
    # Only the first handover hashes the ciphertext, once, by its author.
    envelope = trailer.envelope or c.envelope_id()
    chain = build_chain(envelope, trailer.records)
    if chain.problems or trailer.problems:
        raise RefusedError(
            "this pouch's custody chain is broken; handing it on would hide that",
            *(chain.problems + trailer.problems)[:5],
            "run 'pouch custody' on it",
        )
    previous = chain.links[-1] if chain.links else None
    if previous is not None and previous.acceptance is None:
        raise RefusedError("the last handover was never accepted: its taker must 'pouch accept' it")
    if previous is not None and chain.holder != me:
        raise RefusedError("you do not hold this pouch: the last taker who accepted it is not you")
    now = _now()
    with post.home.register() as reg:
        # The credentials a verifier needs: those of the taker we know
        # of, valid now, not revoked, not yet in the trailer.
        needed = [
            cred
            for cred, _ in reg.credentials()
            if cred.agent == taker.signing_key
            and cred.covers(rfc3339(now))
            and reg.revocation(cred) is None
            and cred.id not in trailer.credentials
        ]
    handover = custody.hand_over(
        post.identity,
        envelope,
        taker.signing_key,
        now,
        previous.acceptance if previous else None,
        seq=previous.handover.seq + 1 if previous else 1,
        place=place,
        note=note,
        credentials=[cred.id for cred in needed],
    )
    c.append(*(record(cred) for cred in needed), record(handover))
    with post.home.register() as reg:
        for row in reg.letters_by_envelope(envelope):
            if row.direction == "sent":
                reg.advance(row.id, "handed over")
    return HandedOver(handover.seq, envelope, taker, len(needed))


def accept(
    post: Post,
    source: Source,
    place: str | None = None,
    receipt: str | os.PathLike[str] | None = None,
) -> Accepted:
    receipt = _receipt_path(receipt)
    with loaded(source) as c:
        return _accept(post, c, place, receipt)


def _accept(
    post: Post, c: Container, place: str | None, receipt: str | os.PathLike[str] | None
) -> Accepted:
    _with_trailer(c)
    me = post.card.signing_key
    trailer = read_trailer(c)
    # Read again, as they are, only for a custody receipt.
    records = [c.read_record(ref) for ref in c.records] if receipt is not None else []
    if not trailer.records:
        raise RefusedError("nobody handed this pouch over: there is nothing to accept")
    envelope = trailer.envelope or ""
    chain = build_chain(envelope, trailer.records)
    if chain.problems or trailer.problems:
        raise CustodyError(
            "this pouch's custody chain is broken", *(chain.problems + trailer.problems)[:5]
        )
    last = chain.links[-1]
    if last.acceptance is not None or last.handover.taker != me:
        raise RefusedError("the last handover is not to you, or was already accepted")
    # Accepting vouches for the envelope: re-hash it.
    if c.envelope_id() != envelope:
        raise CustodyError(
            "the ciphertext does not hash to the envelope id the handovers name",
            "the pouch was altered or swapped: do not accept it",
        )
    acceptance = custody.accept(post.identity, last.handover, _now(), place)
    c.append(record(acceptance))
    with post.home.register() as reg:
        reg.accepted_head(envelope, acceptance.hash, last.handover.seq, rfc3339(_now()))
        credentials = [x for x, _ in reg.credentials()]
        verdict = judge(envelope, read_trailer(c), principals(reg, me), credentials,
                        reg.revocation)  # fmt: skip
        ours = bool(reg.letters_by_envelope(envelope))
    # A letter this register holds: the verified copy repairs its archive.
    repaired = ours and post.home.keep(c, envelope)
    if receipt is not None:
        # Every record of the trailer as it was checked, the new
        # acceptance last: the whole chain and its credentials,
        # verifiable without the pouch.
        records.append(record(acceptance))
        with atomic_output(receipt, replace=False) as f:
            f.write(custody_receipt(envelope, records))
    return Accepted(last.handover.seq, envelope, acceptance.hash, receipt,
                    (*verdict.problems, *verdict.flags), repaired)  # fmt: skip


def answer(post: Post, source: Source, challenge: str) -> str:
    with loaded(source) as c:
        trailer = read_trailer(c)
    chain = build_chain(trailer.envelope or "", trailer.records)
    return custody.answer(post.identity, challenge, chain)


def accredit(
    post: Post,
    agent: Card,
    role: Role,
    valid_from: datetime,
    until: datetime | None = None,
    scope: Sequence[Contact] = (),
    long: bool = False,
) -> tuple[Credential, Scope | None]:
    until = until or valid_from + timedelta(days=DEFAULT_DAYS)
    if until - valid_from > timedelta(days=DEFAULT_DAYS) and not long:
        raise UsageError(
            f"a credential for more than {DEFAULT_DAYS} days needs --long",
            "short-lived credentials limit what a lost or turned envoy can do",
        )
    fingerprints = [c.fingerprint for c in scope]
    credential, opening = custody.accredit(
        post.identity, agent, role, valid_from, until, fingerprints
    )
    with post.home.register() as reg:
        reg.add_credential(credential, opening, rfc3339(datetime.now(UTC)))
    return credential, opening


def revoke(post: Post, credential_id: str) -> tuple[Credential, Revocation]:
    with post.home.register() as reg:
        credential = reg.find_credential(credential_id)
    if credential.principal != post.card.signing_key:
        raise UsageError("you did not issue that credential: only its issuer can revoke it")
    revocation = custody.revoke(post.identity, credential.id, datetime.now(UTC))
    with post.home.register() as reg:
        reg.add_revocation(revocation, rfc3339(datetime.now(UTC)))
    return credential, revocation


def keep_statement(home: Home, data: bytes, scope: bytes | None = None) -> Credential | Revocation:
    """Keep a credential (with its scope's opening, if given) or a
    revocation, given to this home, sealed in a letter, or found in a
    trailer."""
    from ..statements import decode, payload_type

    if decode(data).payload_type == payload_type("revocation"):
        revocation = Revocation.from_bytes(data)
        with home.register() as reg:
            reg.add_revocation(revocation, rfc3339(datetime.now(UTC)))
        return revocation
    credential = Credential.from_bytes(data)
    opening = None
    if scope is not None:
        opening = Scope.from_bytes(scope)
        if opening.commitment() != credential.scope:
            raise StatementError("that scope opening is not this credential's")
    with home.register() as reg:
        reg.add_credential(credential, opening, rfc3339(datetime.now(UTC)))
    return credential


class CredentialState(NamedTuple):
    credential: Credential
    opening: Scope | None
    state: str  # in words: valid, not yet valid, expired, revoked on DATE
    revoked: Revocation | None


def credential_states(home: Home) -> list[CredentialState]:
    """Every credential this register keeps, and where it stands now. "Not
    revoked" means: as far as this register knows (a revocation reaches it
    by letter)."""
    now = rfc3339(datetime.now(UTC))
    out = []
    with home.register() as reg:
        for credential, opening in reg.credentials():
            revoked = reg.revocation(credential)
            if revoked is not None:
                state = f"revoked on {revoked.date}"
            elif now < credential.valid_from:
                state = "not yet valid"
            elif now > credential.until:
                state = "expired"
            else:
                state = "valid, not revoked as far as this register knows"
            out.append(CredentialState(credential, opening, state, revoked))
    return out
