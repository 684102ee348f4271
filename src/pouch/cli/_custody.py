"""pouch accredit, credentials, revoke, handover, accept, custody, answer:
envoys, receivers, and the chain of custody."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from ..errors import FileError, UsageError
from . import (
    _emit,
    _home,
    _names,
    _post,
    _read_card,
    _stdio,
    cli,
    echo_json,
    home_option,
    passphrase_file_option,
)
from ._progress import progress, size_of
from ._terminal import challenge_presenter, qr

if TYPE_CHECKING:
    from ..container import Container
    from ..custody import Credential, Role
    from ..home import CustodyLink, Home
    from ..identity import Card


def _when(text: str | None, default: datetime) -> datetime:
    """RFC 3339 UTC (2018-05-29T00:00:00Z) or a date (2018-05-29, midnight
    UTC), from 1970 to 8999."""
    if text is None:
        return default
    from .._fields import TIME_FORMAT

    for fmt in (TIME_FORMAT, "%Y-%m-%d"):
        try:
            when = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        if not 1970 <= when.year <= 8999:
            break
        return when
    raise UsageError(
        f"{text!r} is not a date pouch takes", "write 2018-05-29 or 2018-05-29T09:00:00Z"
    )


def _card(home: Home, who: str) -> Card:
    """A card file, or a contact's name or fingerprint prefix."""
    return _read_card(who) if os.path.isfile(who) else home.find(who).card


@cli.command("accredit")
@click.argument("agent", metavar="CARD_OR_NAME")
@click.option("--role", type=click.Choice(["envoy", "receiver"]), required=True,
              help="envoy: carries your letters; receiver: accepts letters for you.")  # fmt: skip
@click.option("--for", "scope", multiple=True, metavar="NAME",
              help="Only for letters to or from this contact (repeatable).")  # fmt: skip
@click.option("--from", "start", metavar="DATE", help="Valid from (default: now).")
@click.option("--until", metavar="DATE", help="Valid until (default: 30 days on).")
@click.option("--long", "long_", is_flag=True, help="Allow more than 30 days.")
@click.option("-o", "--output", metavar="FILE", help="Write the credential to FILE.")
@passphrase_file_option
@home_option
def accredit_command(
    agent: str,
    role: Role,
    scope: tuple[str, ...],
    start: str | None,
    until: str | None,
    long_: bool,
    output: str | None,
    passphrase_file: str | None,
    home: str | None,
) -> None:
    """Accredit an agent (a card file, or a contact) as your envoy or receiver."""
    post = _post(home, passphrase_file)
    card = _card(post.home, agent)
    scoped = [post.home.find(name) for name in scope]
    valid_from = _when(start, datetime.now(UTC).replace(microsecond=0))
    valid_until = _when(until, valid_from) if until else None
    credential, opening = post.accredit(card, role, valid_from, valid_until, scoped, long_)
    output = _stdio(output)
    _emit(credential.encode().decode() + "\n", output)
    if opening is not None and output is not None:
        _emit(opening.encode().decode() + "\n", output + ".scope")
    click.echo(f"Accredited {card.name} as your {role}", err=True)
    click.echo(f"  credential  {credential.id}", err=True)
    click.echo(f"  valid       {credential.valid_from} to {credential.until}", err=True)
    if opening is not None:
        where = f"{output}.scope" if output else "the register"
        click.echo(
            f"  scope       {len(opening.fingerprints)} correspondent(s), named only in {where}: "
            "send it sealed (pouch seal -A), never in a trailer",
            err=True,
        )


@cli.group("credentials")
def credentials_group() -> None:
    """Credentials you issued or received."""


@credentials_group.command("add")
@click.argument("file")
@click.option("--scope", "scope_file", metavar="FILE", help="The credential's scope opening.")
@home_option
def credentials_add(file: str, scope_file: str | None, home: str | None) -> None:
    """Keep the credential or revocation in FILE (given to you, sealed in a
    letter, or found in a trailer), with its scope's opening if it has one."""
    from .._io import read_small
    from ..custody import Revocation
    from ..home import keep_statement
    from ..statements import MAX_ENVELOPE

    data = read_small(file, MAX_ENVELOPE, "a credential").strip()
    scope = None
    if scope_file is not None:
        scope = read_small(scope_file, MAX_ENVELOPE, "a scope").strip()
    kept = keep_statement(_home(home), data, scope)
    if isinstance(kept, Revocation):
        click.echo(f"Kept revocation of credential {kept.credential[:16]}")
    else:
        click.echo(f"Kept credential {kept.id[:16]} ({kept.role})")


@credentials_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@home_option
def credentials_list(as_json: bool, home: str | None) -> None:
    """List credentials with their state. "not revoked" means: as far as this
    register knows (a revocation reaches it by letter)."""
    from ..home import credential_states

    h = _home(home)
    names = {c.fingerprint: c.name for c in h.contacts()}
    names[h.card().fingerprint] = "you"
    rows = credential_states(h)
    if as_json:
        out = [
            {
                "id": x.credential.id,
                "principal": x.credential.principal_fingerprint,
                "agent": x.credential.agent_fingerprint,
                "agent_name": x.credential.agent_name,
                "role": x.credential.role,
                "from": x.credential.valid_from,
                "until": x.credential.until,
                "scoped": x.credential.scope is not None,
                "scope": list(x.opening.fingerprints) if x.opening else None,
                "state": x.state,
                "revoked": x.revoked.date if x.revoked else None,
            }
            for x in rows
        ]
        echo_json(out, indent=2)
        return
    if not rows:
        click.echo("No credentials. 'pouch accredit' issues one.")
        return
    for x in rows:
        c, o = x.credential, x.opening
        issuer = names.get(c.principal_fingerprint, c.principal_fingerprint[:16])
        scope = " for " + ", ".join(names.get(f, f[:16]) for f in o.fingerprints) if o else ""
        click.echo(f"{c.id[:16]}  {c.role:8}  {c.agent_name} by {issuer}{scope}")
        click.echo(f"    {c.valid_from} to {c.until}: {x.state}")


@cli.command("revoke")
@click.argument("credential_id")
@click.option("-o", "--output", metavar="FILE", help="Write the revocation to FILE.")
@passphrase_file_option
@home_option
def revoke_command(
    credential_id: str, output: str | None, passphrase_file: str | None, home: str | None
) -> None:
    """Revoke a credential you issued. Send the revocation by letter too: a
    revoked envoy would strip it from a trailer."""
    credential, revocation = _post(home, passphrase_file).revoke(credential_id)
    _emit(revocation.encode().decode() + "\n", _stdio(output))
    click.echo(f"Revoked credential {credential.id[:16]} of {credential.agent_name}", err=True)
    click.echo(
        "hint: seal the revocation to your correspondents (pouch seal -A): a trailer copy "
        "can be stripped by whoever carries it",
        err=True,
    )


# --- custody ---------------------------------------------------------------------


def _shown(names: dict[bytes, str], credentials: Iterable[Credential]) -> dict[bytes, str]:
    """names, and the agents that people in names accredited, by the name
    their credential gives them (signed by its issuer, not verified by you)."""
    shown = dict(names)
    for c in credentials:
        if c.principal in names and c.agent not in shown:
            shown[c.agent] = f"{c.agent_name} (named by {names[c.principal]})"
    return shown


@cli.command("handover")
@click.argument("file")
@click.option("--to", "taker", required=True, metavar="NAME_OR_CARD", help="Who takes it.")
@click.option("--at", "place", metavar="PLACE", help="Where (opt-in: every carrier sees it).")
@click.option("--note", metavar="TEXT", help="A note (opt-in: every carrier sees it).")
@passphrase_file_option
@home_option
def handover_command(
    file: str,
    taker: str,
    place: str | None,
    note: str | None,
    passphrase_file: str | None,
    home: str | None,
) -> None:
    """Hand the pouch in FILE over: append a handover signed by you."""
    from .. import container

    post = _post(home, passphrase_file)
    done = post.hand_over(file, _card(post.home, taker), place, note)
    name = done.taker.name
    click.echo(f"Handed over to {name}: handover {done.seq} of {container.short_id(done.envelope)}")
    if done.credentials:
        click.echo(f"  with {done.credentials} credential(s) for the verifier")
    click.echo(f"hint: {name} now runs 'pouch accept {file}'", err=True)


@cli.command("accept")
@click.argument("file")
@click.option("--at", "place", metavar="PLACE", help="Where (opt-in: every carrier sees it).")
@click.option(
    "--receipt",
    "receipt_out",
    metavar="OUT",
    help="Also write a custody receipt to OUT: the chain up to your acceptance, the "
    "courier's proof of delivery (for a receiver who does not open the letter).",
)
@passphrase_file_option
@home_option
def accept_command(
    file: str,
    place: str | None,
    receipt_out: str | None,
    passphrase_file: str | None,
    home: str | None,
) -> None:
    """Take the pouch in FILE: check it, then countersign the handover to you."""
    from .. import container

    if receipt_out == "-":
        raise UsageError("a custody receipt goes into a file: give its name")
    post = _post(home, passphrase_file)
    # Accepting re-hashes the ciphertext: a large pouch takes a while.
    with progress("Accepting", size_of(file), ready=lambda: post.unlocked):
        done = post.accept(file, place, receipt_out)
    click.echo(f"Accepted handover {done.seq} of {container.short_id(done.envelope)}")
    click.echo(f"  chain head  {done.head}  (kept in your register)")
    if done.receipt is not None:
        click.echo(f"  custody receipt  {receipt_out}  (hand it to the courier, or the sender)")
    if done.repaired:
        click.echo("note: your archived copy of this letter was damaged or missing: it is "
                   "whole again, from this file", err=True)  # fmt: skip
    if done.problems:
        click.echo("warning: you hold it now, but its custody does not verify as far as your "
                   "register knows:", err=True)  # fmt: skip
        for problem in done.problems:
            click.echo(f"  ! {problem}", err=True)
        click.echo(f"hint: 'pouch custody {file}' shows the chain; credentials given to you "
                   "go in with 'pouch credentials add FILE'", err=True)  # fmt: skip


@cli.command("custody")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--challenge",
    is_flag=True,
    help="Also challenge the presenter to prove they hold the holder's key (the last taker "
    "who accepted).",
)
@click.option(
    "--card",
    "card_files",
    multiple=True,
    metavar="FILE",
    help="A principal's card to check against (repeatable): a guard needs no identity.",
)
@home_option
def custody_command(
    file: str, as_json: bool, challenge: bool, card_files: tuple[str, ...], home: str | None
) -> None:
    """Show and verify the chain of custody of FILE, without decrypting it.

    It checks against your contacts and credentials, and the cards given
    with --card; a guard at a door checks with the cards it was given
    alone, with no identity of its own.

    With --challenge, a fresh challenge is printed; the presenter answers it
    with 'pouch answer FILE CHALLENGE', and the answer is read from stdin.
    """
    from .. import container
    from ..errors import CustodyError
    from ..home import check_custody

    cards = [_read_card(path) for path in card_files]
    h = _home(home)
    guard = not h.card_path.exists()  # no identity: the cards alone
    if guard and not cards:
        raise FileError(
            f"no pouch identity in {h.path}",
            "create one with 'pouch init --name NAME'",
            "or, as a guard, check with the principals' cards: --card FILE...",
        )
    with container.load(file) as c:
        checked = check_custody(None if guard else h, c, cards)
    names = {} if guard else _names(h)
    names.update({card.signing_key: card.name for card in cards})
    shown = _shown(names, checked.credentials)
    problems = list(checked.report.problems)
    flags = list(checked.flags)
    if as_json:
        out = {
            "envelope": checked.envelope,
            # A custody receipt holds no ciphertext: nothing to match.
            "envelope_matches": checked.matches,
            "custody_receipt": checked.detached,
            "links": [
                {
                    "seq": link.seq,
                    "giver": _fingerprint(link.giver),
                    "taker": _fingerprint(link.taker),
                    "time": link.time,
                    "place": link.place,
                    "note": link.note,
                    "accepted": link.accepted,
                    "accepted_at": link.accepted_at,
                    "accredited": link.accredited,
                }
                for link in checked.report.links
            ],
            "problems": problems,
            "flags": flags,
            "forks": [{"seq": s, "prev": p} for s, p in checked.verdict.chain.forks],
            "trailer_torn": c.torn,
            "verified": not problems and not flags,
        }
        echo_json(out, indent=2)
    else:
        if checked.detached:
            match = "a custody receipt: it names the envelope, without the ciphertext"
        else:
            match = "the ciphertext hashes to it" if checked.matches else "DOES NOT MATCH"
        envelope = checked.envelope
        click.echo(f"Envelope  {container.short_id(envelope)}  {envelope}  ({match})")
        for link in checked.report.links:
            _show_link(link, shown)
        for line in problems + flags:
            click.echo(f"  ! {line}")
        if c.torn:
            click.echo("  note: the last trailer record is torn (an append was interrupted); it is "
                       "ignored, and the next handover or acceptance cuts it off")  # fmt: skip
    if challenge:
        if not challenge_presenter(checked.verdict.chain, shown, as_json):
            problems.append("the presenter could not prove they hold the pouch holder's key")
    if problems or flags:
        raise CustodyError("custody does not verify", *(problems + flags)[:3])
    if not as_json:
        # Exactly what was checked: a handover still in transit is signed by
        # its giver alone.
        links = checked.report.links
        pending = [link.seq for link in links if link.accepted is None]
        signed = len(links) - len(pending)
        click.echo(
            f"Custody verifies: {signed} link{'s' if signed != 1 else ''} signed by both parties"
            + (f", handover {pending[0]} awaiting its taker's acceptance" if pending else "")
            + "; every holder accredited"
            + (
                " (not revoked as far as this register knows)."
                if not guard
                else " by the cards given (revocations not checked: no register; the cards "
                "must come from you, not from the presenter)."
            )
        )


def _fingerprint(key: bytes) -> str:
    from ..identity import fingerprint

    return fingerprint(key)


def _show_link(link: CustodyLink, names: dict[bytes, str]) -> None:
    def who(key: bytes) -> str:
        return names.get(key, _fingerprint(key)[:16])

    at = f" at {link.place}" if link.place else ""
    click.echo(f"  {link.seq}. {link.time}  {who(link.giver)} -> {who(link.taker)}{at}")
    if link.note:
        click.echo(f"       note: {link.note}")
    if link.accepted:
        where = f" at {link.accepted_at}" if link.accepted_at else ""
        click.echo(f"       accepted {link.accepted}{where}")
    else:
        click.echo("       not yet accepted")
    if link.accredited:
        click.echo(f"       taker: {link.accredited}")


@cli.command("answer")
@click.argument("file")
@click.argument("challenge", nargs=-1, required=True)
@passphrase_file_option
@home_option
def answer_command(
    file: str, challenge: tuple[str, ...], passphrase_file: str | None, home: str | None
) -> None:
    """Answer a guard's challenge for the pouch in FILE, which you hold: as
    written (pouch-challenge-…) or as read aloud (25 digits)."""
    answered = _post(home, passphrase_file).answer(file, " ".join(challenge))
    click.echo(answered)
    qr(answered)


def show_custody_receipt(h: Home, c: Container, envelope: str | None, as_json: bool) -> None:
    """pouch receipt of a custody receipt: the chain verified (a guard's
    check, with this register), and to whom the sender's pouch went."""
    from .. import container
    from ..errors import CustodyError
    from ..home import check_custody_receipt

    delivered = check_custody_receipt(h, c, envelope)
    names = _names(h)
    shown = _shown(names, delivered.credentials)
    to, receiver, last = delivered.to, delivered.receiver, delivered.last
    problems = list(delivered.report.problems)
    taker = last.taker if last else None
    if as_json:
        out = {
            "envelope": delivered.envelope,
            "delivered_to": None if to is None else _fingerprint(to),
            "delivered_to_name": names.get(to) if to else None,
            "accepted_by": None if taker is None else _fingerprint(taker),
            "receiver_name": receiver.agent_name if receiver else None,
            "accepted": last.accepted if last else None,
            "accepted_at": last.accepted_at if last else None,
            "links": len(delivered.report.links),
            "problems": problems,
            "verified": not problems,
        }
        echo_json(out, indent=2)
    else:

        def who(key: bytes) -> str:
            return shown.get(key, _fingerprint(key)[:16])

        named = delivered.envelope
        click.echo(f"Custody receipt for pouch {container.short_id(named)}  {named}")
        for link in delivered.report.links:
            at = f" at {link.place}" if link.place else ""
            took = f", accepted {link.accepted}" if link.accepted else ", never accepted"
            click.echo(
                f"  {link.seq}. {link.time}  {who(link.giver)} -> {who(link.taker)}{at}{took}"
            )
        if to is not None and taker is not None and last is not None and last.accepted:
            by = "" if receiver is None else f", by their receiver {who(taker)}"
            where = f" at {last.accepted_at}" if last.accepted_at else ""
            click.echo(f"  delivered to  {who(to)}{by}")
            click.echo(f"  accepted      {last.accepted}{where}")
        for line in problems:
            click.echo(f"  ! {line}")
    if problems:
        raise CustodyError("the custody receipt does not prove delivery", *problems[:3])
    if not as_json:
        click.echo(
            "  verdict       delivered: every link signed by both parties, every holder "
            "accredited (not revoked as far as this register knows). The letter itself was "
            "not opened: a custody receipt proves the pouch arrived, not that it was read."
        )
