"""Who held a pouch, judged (SPEC.md section 3.9): accreditation, and the
verdicts built on it.

judge() is the guard's check, without decrypting: the chain's shape, and
every holder accredited by the credentials the verifier knows (its own and
the trailer's, less those revoked). The verdict keeps that accreditation
view, on which the two checks that know more build: recipient_flags(), the
recipient's, once the letter verified (who the sender is, scopes), and
delivery(), the sender's, reading a custody receipt. "Not revoked" always
means "as far as this verifier knows": a revoked envoy would strip a
revocation from a trailer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass

from ..identity import fingerprint
from .chain import Chain, build_chain
from .credentials import Credential, Revocation, Scope
from .trailer import Trailer


@dataclass
class Verdict:
    chain: Chain
    problems: list[str]  # the chain's shape, and records that do not verify
    flags: list[str]  # who held it: accreditation
    accredited: dict[int, str]  # seq -> how its taker was accredited
    accreditation: Accreditation  # what the verifier knew: the other verdicts build on it

    @property
    def clean(self) -> bool:
        return not self.problems and not self.flags


def judge(
    envelope: str,
    trailer: Trailer,
    principals: Set[bytes],
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
    valid = Accreditation(credentials, trailer, revoked)
    verdict = Verdict(chain, problems, flags, accredited, valid)
    if not chain.links:
        flags.append("no custody: nobody signed for this pouch")
        return verdict
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
    return verdict


class Accreditation:
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
    verdict: Verdict, sender: bytes, me: bytes, scopes: Mapping[str, Scope]
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
    valid = verdict.accreditation
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
        times = [h.time] + ([a.time] if a else [])
        if not holder_ok(h.taker, times):
            scoped = [
                c
                for c in valid.find(h.taker, times)
                if c.role == "envoy" and c.principal == sender and c.scope is not None
            ]
            if scoped and all(scopes.get(c.id) is None for c in scoped):
                flags.append(
                    f"handover {h.seq}: the taker is the sender's envoy under a scoped "
                    "credential whose scope you were not given; add the .scope file the sender "
                    "gave with it: pouch credentials add CREDENTIAL --scope FILE"
                )
            elif scoped:
                flags.append(
                    f"handover {h.seq}: the taker is the sender's envoy, but its credential's "
                    "scope does not cover letters to you"
                )
            else:
                flags.append(
                    f"handover {h.seq}: the taker is neither the sender's envoy for letters to "
                    "you nor you nor your receiver"
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
    verdict: Verdict, me: bytes, principals: Set[bytes]
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
    valid = verdict.accreditation
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
