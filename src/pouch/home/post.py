"""The Post: one principal's workflows, over its home (SPEC.md section 5).

Every interface (the CLI, a local page, a relay client) sends, receives,
hands over and accepts through a Post, which does the whole crash-ordered
work and returns typed results; the interface only parses, calls and
renders. Waiting is a callback (on_wait), never a print.

    post = Post(home, lambda: home.unlock(ask_passphrase))
    sent = post.send(["Kim Jong-un"], Path("letter.txt"), Path("letter.pouch"))
    with container.load("reply.pouch") as c:
        received = post.receive(c, Path("inbox"))

Each verb is carried out in the module of its kind: send and send_receipt
in _sending.py; receive and check_receipt in _receiving.py; hand_over,
accept, answer, accredit and revoke in carry.py; ledger, thread and
export_transcript in correspondence.py. A verb imports its module when it
is first called: a command pays at start-up only for what it does. What
needs no secret key is there too, as functions of a Home: the guard's
custody check, a custody receipt read, db check, restore.

The verbs return NamedTuples: immutable and typed like frozen dataclasses,
and several times cheaper to define, which every command pays at start-up
(a frozen dataclass costs about a millisecond to create here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from ..identity import Card, Identity
from .folder import Home

if TYPE_CHECKING:
    from ..container import Source
    from ..custody import Credential, Revocation, Role, Scope
    from ..letter import KemChoice
    from ._receiving import CheckedReceipt, Received
    from ._sending import Attachment, Input, Output, Sent
    from .carry import Accepted, HandedOver
    from .correspondence import Ledger, Thread
    from .register import Contact


def _nothing(what: str) -> None:
    """The default for on_wait: say nothing."""


class Post:
    """One principal's workflows. Construct it with the home and the
    identity, or with how to unlock it: then the passphrase is asked for
    once, when a workflow first needs the keys, after every check that
    does not."""

    def __init__(
        self,
        home: Home,
        identity: Identity | Callable[[], Identity],
        *,
        on_wait: Callable[[str], object] = _nothing,
    ) -> None:
        """identity is the unlocked identity, or how to unlock it (asking
        for a passphrase, say): then it is called once, only when a
        workflow first needs the secret keys. on_wait(what) is called
        before waiting for something another process holds (another seal
        in this home)."""
        self.home = home
        self.card: Card = home.card()
        if isinstance(identity, Identity):
            self._identity: Identity | None = identity
            self._unlock: Callable[[], Identity] = lambda: identity
        else:
            self._identity, self._unlock = None, identity
        self.on_wait = on_wait

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = self._unlock()
        return self._identity

    @property
    def unlocked(self) -> bool:
        """Whether the secret keys were unlocked (the passphrase, if any,
        given): a progress display waits for it, not to draw over a prompt."""
        return self._identity is not None

    @property
    def me(self) -> str:
        """This home's fingerprint."""
        return self.card.fingerprint

    # --- sending ------------------------------------------------------------------

    def send(
        self,
        to: Sequence[Contact | str],
        body: Input,
        output: Output,
        *,
        attachments: Sequence[Attachment] = (),
        subject: str = "",
        in_reply_to: str | None = None,
        kem: KemChoice | None = None,
        pad: bool = False,
        armor: bool = False,
        allow_unverified: bool = False,
        now: datetime | None = None,
    ) -> Sent:
        """Seal a letter to contacts (or names a contact is found by) and
        record it (SPEC.md 5.3). Refused to a contact never verified unless
        allow_unverified. The same call with the same files, run again
        after a crash, writes out the letter the first one committed
        rather than sealing a second one (Sent.completed)."""
        from . import _sending

        return _sending.send(
            self, to, body, output, attachments=attachments, subject=subject,
            in_reply_to=in_reply_to, kem=kem, pad=pad, armor=armor,
            allow_unverified=allow_unverified, now=now,
        )  # fmt: skip

    def send_receipt(self, received: Received, output: str | os.PathLike[str]) -> Sent:
        """Seal a receipt for a letter received (SPEC.md 2.6) back to its
        sender, who must be a contact: the letter's ids, its place, the
        custody head accepted, and the last letter received from them. Once
        per letter and output: a re-run writes out the one committed."""
        from . import _sending

        return _sending.send_receipt(self, received, output)

    # --- receiving ----------------------------------------------------------------

    def receive(
        self,
        source: Source,
        into: str | os.PathLike[str] | None = None,
        *,
        stream: BinaryIO | None = None,
        force: bool = False,
        require_accredited: bool = False,
    ) -> Received:
        """Open the letter in source (a container, a path or a file), verify
        it, record it, then release it: its parts into the folder into
        (named only once all verified; existing files refused unless
        force), or its body to stream as its segments verify, or held in
        memory (Received.body). With require_accredited,
        a letter whose custody does not verify is refused (CustodyError)."""
        from . import _receiving

        return _receiving.receive(
            self, source, into, stream=stream, force=force, require_accredited=require_accredited
        )

    def check_receipt(
        self, source: Source, letter_id: str | None = None, envelope: str | None = None
    ) -> CheckedReceipt:
        """Open a receipt letter (SPEC.md 2.6) for a letter this home sent,
        check it names that letter, its envelope, one of its recipients,
        and is signed by that recipient or its accredited receiver; record
        it, which moves the letter to delivered. letter_id and envelope, if
        given, are what it must be for. (A custody receipt, which names the
        pouch but not the letter, is carry.check_custody_receipt's.)"""
        from . import _receiving

        return _receiving.check_receipt(self, source, letter_id, envelope)

    # --- carrying -----------------------------------------------------------------

    def hand_over(
        self, source: Source, taker: Card, place: str | None = None, note: str | None = None
    ) -> HandedOver:
        """Append a handover of the pouch in source (its binary .pouch) to taker,
        signed by this home, with the credentials of taker a verifier
        needs. Refused on a broken chain, or a pouch this home does not
        hold."""
        from . import carry

        return carry.hand_over(self, source, taker, place, note)

    def accept(
        self,
        source: Source,
        place: str | None = None,
        receipt: str | os.PathLike[str] | None = None,
    ) -> Accepted:
        """Take the pouch in source (its binary .pouch): check its chain and that
        the last handover is to this home, re-hash the envelope it vouches
        for, then countersign. With receipt, also write a custody receipt
        there: the chain up to this acceptance, the courier's proof of
        delivery (for a receiver who does not open the letter)."""
        from . import carry

        return carry.accept(self, source, place, receipt)

    def answer(self, source: Source, challenge: str) -> str:
        """Answer a guard's challenge for the pouch in source, which this home
        holds (SPEC.md 3.10)."""
        from . import carry

        return carry.answer(self, source, challenge)

    def accredit(
        self,
        agent: Card,
        role: Role,
        valid_from: datetime,
        until: datetime | None = None,
        scope: Sequence[Contact] = (),
        long: bool = False,
    ) -> tuple[Credential, Scope | None]:
        """Accredit agent as this home's envoy or receiver, and keep the
        credential; with scope, only for letters with those contacts (the
        opening, returned, must travel sealed). Credentials are short-lived:
        more than DEFAULT_DAYS needs long."""
        from . import carry

        return carry.accredit(self, agent, role, valid_from, until, scope, long)

    def revoke(self, credential_id: str) -> tuple[Credential, Revocation]:
        """Revoke a credential this home issued (named by a prefix of its
        id), and keep the revocation."""
        from . import carry

        return carry.revoke(self, credential_id)

    # --- the correspondence --------------------------------------------------------

    def ledger(self, name: str | None = None) -> Ledger:
        """The correspondence with the contact name (or everyone): every
        letter sent and received, letters missing, forks found."""
        from . import correspondence

        return correspondence.ledger(self, name)

    def thread(self, letter: str) -> Thread:
        """The thread of the letter named by its id or a prefix of at least 8
        digits: what it answers, up to the first letter, and every answer
        to any of them, as a tree."""
        from . import correspondence

        return correspondence.thread(self, letter)

    def export_transcript(
        self, name: str, output: str | os.PathLike[str], decrypted: bool = False
    ) -> int:
        """Write the correspondence with the contact name to output, every
        letter as archived (SPEC.md 6); decrypted, with each letter's file
        key and the two parties' order block keys, so that whoever holds it
        can read and check every letter in it, and nothing else. Returns
        how many letters it holds."""
        from . import correspondence

        return correspondence.export_transcript(self, name, output, decrypted)
