"""pouch accredit, credentials, revoke: accreditation of envoys and receivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from ..errors import FileError, RefusedError, UsageError
from . import _emit, _home, _now, _stdio, _unlock, cli, home_option, passphrase_file_option

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..container import Container
    from ..credentials import Credential
    from ..custody import Chain
    from ..home import Home
    from ..identity import Card
    from ..register import Register


def _when(text: str | None, default: datetime) -> datetime:
    """RFC 3339 UTC (2018-05-29T00:00:00Z) or a date (2018-05-29, midnight
    UTC), from 1970 to 8999."""
    if text is None:
        return default
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
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
    role: str,
    scope: tuple[str, ...],
    start: str | None,
    until: str | None,
    long_: bool,
    output: str | None,
    passphrase_file: str | None,
    home: str | None,
) -> None:
    """Accredit an agent (a card file, or a contact) as your envoy or receiver."""
    from ..credentials import DEFAULT_DAYS, accredit

    h = _home(home)
    with h.register() as reg:
        card = _card(reg, agent)
        scoped = [reg.find(name).fingerprint for name in scope]
    now = datetime.now(UTC).replace(microsecond=0)
    valid_from = _when(start, now)
    valid_until = _when(until, valid_from) if until else valid_from + timedelta(days=DEFAULT_DAYS)
    if valid_until - valid_from > timedelta(days=DEFAULT_DAYS) and not long_:
        raise UsageError(
            f"a credential for more than {DEFAULT_DAYS} days needs --long",
            "short-lived credentials limit what a lost or turned envoy can do",
        )
    identity = _unlock(h, passphrase_file)
    credential, opening = accredit(identity, card, role, valid_from, valid_until, scoped)
    with h.register() as reg:
        reg.add_credential(credential, opening, _now())
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
    from ..credentials import REVOCATION_KIND, Credential, Revocation, Scope
    from ..errors import StatementError
    from ..statements import MAX_ENVELOPE, decode, payload_type

    data = read_small(file, MAX_ENVELOPE, "a credential").strip()
    h = _home(home)
    if decode(data).payload_type == payload_type(REVOCATION_KIND):
        revocation = Revocation.from_bytes(data)
        with h.register() as reg:
            reg.add_revocation(revocation, _now())
        click.echo(f"Kept revocation of credential {revocation.credential[:16]}")
        return
    credential = Credential.from_bytes(data)
    opening = None
    if scope_file is not None:
        opening = Scope.from_bytes(read_small(scope_file, MAX_ENVELOPE, "a scope").strip())
        if opening.commitment() != credential.scope:
            raise StatementError("that scope opening is not this credential's")
    with h.register() as reg:
        reg.add_credential(credential, opening, _now())
    click.echo(f"Kept credential {credential.id[:16]} ({credential.role})")


@credentials_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@home_option
def credentials_list(as_json: bool, home: str | None) -> None:
    """List credentials with their state. "not revoked" means: as far as this
    register knows (a revocation reaches it by letter)."""
    from ..identity import fingerprint

    now = _now()
    with _home(home).register() as reg:
        names = {c.fingerprint: c.name for c in reg.contacts()}
        names[_home(home).card().fingerprint] = "you"
        rows = []
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
            rows.append((credential, opening, state, revoked))
    if as_json:
        import json

        out = [
            {
                "id": c.id,
                "principal": c.principal_fingerprint,
                "agent": c.agent_fingerprint,
                "agent_name": c.agent_name,
                "role": c.role,
                "from": c.valid_from,
                "until": c.until,
                "scoped": c.scope is not None,
                "scope": list(o.fingerprints) if o else None,
                "state": state,
                "revoked": r.date if r else None,
            }
            for c, o, state, r in rows
        ]
        click.echo(json.dumps(out, indent=2))
        return
    if not rows:
        click.echo("No credentials. 'pouch accredit' issues one.")
        return
    for c, o, state, _ in rows:
        issuer = names.get(fingerprint(c.principal), c.principal_fingerprint[:16])
        scope = " for " + ", ".join(names.get(f, f[:16]) for f in o.fingerprints) if o else ""
        click.echo(f"{c.id[:16]}  {c.role:8}  {c.agent_name} by {issuer}{scope}")
        click.echo(f"    {c.valid_from} to {c.until}: {state}")


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
    from ..credentials import revoke

    h = _home(home)
    with h.register() as reg:
        credential = reg.find_credential(credential_id)
    if credential.principal != h.card().signing_key:
        raise UsageError("you did not issue that credential: only its issuer can revoke it")
    identity = _unlock(h, passphrase_file)
    revocation = revoke(identity, credential.id, datetime.now(UTC))
    with h.register() as reg:
        reg.add_revocation(revocation, _now())
    _emit(revocation.encode().decode() + "\n", _stdio(output))
    click.echo(f"Revoked credential {credential.id[:16]} of {credential.agent_name}", err=True)
    click.echo(
        "hint: seal the revocation to your correspondents (pouch seal -A): a trailer copy "
        "can be stripped by whoever carries it",
        err=True,
    )


# --- custody ---------------------------------------------------------------------


def _card(reg: Register, who: str) -> Card:
    """A card file, or a contact's name or fingerprint prefix."""
    import os

    from .._io import read_small
    from ..identity import Card
    from ..statements import MAX_ENVELOPE

    if os.path.isfile(who):
        return Card.from_bytes(read_small(who, MAX_ENVELOPE, "a card").rstrip(b"\r\n"))
    return reg.find(who).card


def _with_trailer(file: str) -> Container:
    """The container at file, which must be a binary .pouch: custody lives
    in its trailer (a bare age file has none; armor cannot be appended to)."""
    from .. import container

    c = container.load(file)
    if c.bare or c.src.name != file:
        c.src.close()
        raise UsageError(f"{file} is not a binary .pouch container: custody needs its trailer")
    return c


def _receipt_path(out: str | None) -> str | None:
    """Where accept --receipt writes, checked before anything is accepted:
    a new file (never the pouch itself, never over another) in a folder
    that exists."""
    import os

    if out is None:
        return None
    if out == "-":
        raise UsageError("a custody receipt goes into a file: give its name")
    if os.path.lexists(out):
        raise RefusedError(f"{out} already exists: the custody receipt goes into a new file")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise FileError(f"cannot write the custody receipt in {folder}")
    return out


def _names(reg: Register, own: bytes) -> dict[bytes, str]:
    names = {c.card.signing_key: c.name for c in reg.contacts()}
    names[own] = "you"
    return names


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
    from ..custody import RECORD_CREDENTIAL, RECORD_HANDOVER, build_chain, hand_over, read_trailer

    h = _home(home)
    me = h.card().signing_key
    c = _with_trailer(file)
    trailer = read_trailer(c)
    with c.src:
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
    now = datetime.now(UTC).replace(microsecond=0)
    with h.register() as reg:
        taker_card = _card(reg, taker)
        taker_key, taker_name = taker_card.signing_key, taker_card.name
        # The credentials a verifier needs: those of the taker we know of,
        # valid now, not revoked, not yet in the trailer.
        needed = [
            cred
            for cred, _ in reg.credentials()
            if cred.agent == taker_key
            and cred.covers(_now())
            and reg.revocation(cred) is None
            and cred.id not in trailer.credentials
        ]
    identity = _unlock(h, passphrase_file)
    handover = hand_over(
        identity,
        envelope,
        taker_key,
        now,
        previous.acceptance if previous else None,
        seq=previous.handover.seq + 1 if previous else 1,
        place=place,
        note=note,
        credentials=[cred.id for cred in needed],
    )
    for cred in needed:
        container.append_record(file, container.Record(RECORD_CREDENTIAL, cred.encode()))
    container.append_record(file, container.Record(RECORD_HANDOVER, handover.statement.encode()))
    with h.register() as reg:
        for row in reg.letters_by_envelope(envelope):
            if row.direction == "sent":
                reg.advance(row.id, "handed over")
    click.echo(
        f"Handed over to {taker_name}: handover {handover.seq} of {container.short_id(envelope)}"
    )
    if needed:
        click.echo(f"  with {len(needed)} credential(s) for the verifier")
    click.echo(f"hint: {taker_name} now runs 'pouch accept {file}'", err=True)


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
    from ..custody import RECORD_ACCEPTANCE, accept, build_chain, read_trailer
    from ..errors import CustodyError

    h = _home(home)
    me = h.card().signing_key
    receipt_path = _receipt_path(receipt_out)
    c = _with_trailer(file)
    with c.src:
        trailer = read_trailer(c)
        # Read again, as they are, only for a custody receipt.
        records = [c.read_record(ref) for ref in c.records] if receipt_path is not None else []
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
    identity = _unlock(h, passphrase_file)
    acceptance = accept(identity, last.handover, datetime.now(UTC).replace(microsecond=0), place)
    container.append_record(
        file, container.Record(RECORD_ACCEPTANCE, acceptance.statement.encode())
    )
    with h.register() as reg:
        reg.accepted_head(envelope, acceptance.hash, last.handover.seq, _now())
    click.echo(f"Accepted handover {last.handover.seq} of {container.short_id(envelope)}")
    click.echo(f"  chain head  {acceptance.hash}  (kept in your register)")
    if receipt_path is not None:
        from .._io import atomic_output

        # Every record of the trailer as it was checked, the new acceptance
        # last: the whole chain and its credentials, verifiable without the
        # pouch.
        records.append(container.Record(RECORD_ACCEPTANCE, acceptance.statement.encode()))
        with atomic_output(receipt_path, replace=False) as f:
            f.write(container.custody_receipt(envelope, records))
        click.echo(f"  custody receipt  {receipt_out}  (hand it to the courier, or the sender)")


@cli.command("custody")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--challenge",
    is_flag=True,
    help="Also challenge the presenter to prove they hold the holder's key (the last taker "
    "who accepted).",
)
@home_option
def custody_command(file: str, as_json: bool, challenge: bool, home: str | None) -> None:
    """Show and verify the chain of custody of FILE, without decrypting it.

    With --challenge, a fresh challenge is printed; the presenter answers it
    with 'pouch answer FILE CHALLENGE', and the answer is read from stdin.
    """
    from .. import container
    from ..custody import judge, read_trailer
    from ..errors import CustodyError

    h = _home(home)
    own = h.card()
    c = container.load(file)
    with c.src:
        trailer = read_trailer(c)
        # A custody receipt holds no ciphertext to hash: the envelope it names.
        actual = c.detached or c.envelope_id()
    named = trailer.envelope or actual
    with h.register() as reg:
        names = _names(reg, own.signing_key)
        credentials = [x for x, _ in reg.credentials()]
        verdict = judge(named, trailer, set(names), credentials, reg.revocation)
        kept = reg.custody_head(named)
    shown = _shown(names, [*credentials, *trailer.credentials.values()])
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

    def who(key: bytes) -> str:
        from ..identity import fingerprint

        return shown.get(key, fingerprint(key)[:16])

    if as_json:
        import json

        out = {
            "envelope": actual,
            # A custody receipt holds no ciphertext: nothing to match.
            "envelope_matches": None if c.detached else named == actual,
            "custody_receipt": c.detached is not None,
            "links": [
                {
                    "seq": link.handover.seq,
                    "giver": link.giver,
                    "taker": link.taker,
                    "time": link.handover.time,
                    "place": link.handover.place,
                    "note": link.handover.note,
                    "accepted": link.acceptance.time if link.acceptance else None,
                    "accepted_at": link.acceptance.place if link.acceptance else None,
                    "accredited": verdict.accredited.get(link.handover.seq),
                }
                for link in verdict.chain.links
            ],
            "problems": problems,
            "flags": verdict.flags,
            "forks": [{"seq": s, "prev": p} for s, p in verdict.chain.forks],
            "trailer_torn": c.torn,
            "verified": not problems and not verdict.flags,
        }
        click.echo(json.dumps(out, indent=2))
    else:
        if c.detached:
            match = "a custody receipt: it names the envelope, without the ciphertext"
        else:
            match = "the ciphertext hashes to it" if named == actual else "DOES NOT MATCH"
        click.echo(f"Envelope  {container.short_id(actual)}  {actual}  ({match})")
        for link in verdict.chain.links:
            hv = link.handover
            at = f" at {hv.place}" if hv.place else ""
            click.echo(f"  {hv.seq}. {hv.time}  {who(hv.giver)} -> {who(hv.taker)}{at}")
            if hv.note:
                click.echo(f"       note: {hv.note}")
            if link.acceptance:
                where = f" at {link.acceptance.place}" if link.acceptance.place else ""
                click.echo(f"       accepted {link.acceptance.time}{where}")
            else:
                click.echo("       not yet accepted")
            how = verdict.accredited.get(hv.seq)
            if how:
                click.echo(f"       taker: {how}")
        for line in problems + verdict.flags:
            click.echo(f"  ! {line}")
        if c.torn:
            click.echo("  note: the last trailer record is torn (an append was interrupted); it is "
                       "ignored, and the next handover or acceptance cuts it off")  # fmt: skip
    if challenge:
        if not _challenge(verdict.chain, shown, as_json):
            problems.append("the presenter could not prove they hold the pouch holder's key")
    if problems or verdict.flags:
        raise CustodyError("custody does not verify", *(problems + verdict.flags)[:3])
    if not as_json:
        click.echo("Custody verifies: every link signed by both parties, every holder accredited "
                   "(not revoked as far as this register knows).")  # fmt: skip


def _challenge(chain: Chain, names: dict[bytes, str], quiet: bool) -> bool:
    """Ask the presenter to sign a fresh challenge with the holder's key."""
    import sys

    from ..custody import check_answer, new_challenge

    fresh = new_challenge()
    if chain.holder is None:
        holder = "nobody"
    else:
        from ..identity import fingerprint

        holder = names.get(chain.holder, fingerprint(chain.holder)[:16])
    pending = chain.links[-1] if chain.links and chain.links[-1].acceptance is None else None
    if pending is not None:
        click.echo(
            f"note: handover {pending.handover.seq} is not accepted yet: the pouch's holder is "
            "still the one who took it before",
            err=True,
        )
    click.echo(f"challenge: {fresh}", err=quiet)
    click.echo(f"  the presenter ({holder}, they say) runs: pouch answer FILE {fresh}", err=True)
    click.echo("answer: ", nl=False, err=True)
    reply = sys.stdin.readline().strip()
    if check_answer(fresh, reply, chain):
        click.echo(f"The presenter holds the key of the pouch's holder, {holder}.", err=True)
        return True
    click.echo("The answer does not prove possession: a copy, or the wrong person.", err=True)
    return False


@cli.command("answer")
@click.argument("file")
@click.argument("challenge")
@passphrase_file_option
@home_option
def answer_command(
    file: str, challenge: str, passphrase_file: str | None, home: str | None
) -> None:
    """Answer a guard's challenge for the pouch in FILE, which you hold."""
    from .. import container
    from ..custody import answer, build_chain, read_trailer

    c = container.load(file)
    with c.src:
        trailer = read_trailer(c)
    chain = build_chain(trailer.envelope or "", trailer.records)
    identity = _unlock(_home(home), passphrase_file)
    click.echo(answer(identity, challenge, chain))


def custody_receipt(h: Home, c: Container, envelope: str | None, as_json: bool) -> None:
    """pouch receipt of a custody receipt: the chain verified (a guard's
    check, with this register), and to whom the sender's pouch went."""
    import json

    from .. import container, statements
    from ..custody import delivery, judge, read_trailer
    from ..errors import CustodyError
    from ..identity import fingerprint

    with c.src:
        trailer = read_trailer(c)
    named = c.detached or ""
    if envelope is not None and not statements.is_hex64(envelope.lower()):
        raise UsageError("--envelope takes a full envelope id (64 hex digits)")
    if envelope is not None and named != envelope.lower():
        raise CustodyError(
            f"a custody receipt for another pouch: {named[:16]}, not {envelope[:16]}"
        )
    own = h.card().signing_key
    with h.register() as reg:
        names = _names(reg, own)
        credentials = [x for x, _ in reg.credentials()]
        verdict = judge(named, trailer, set(names), credentials, reg.revocation)
        to, receiver, flags = delivery(
            verdict, trailer, own, set(names), credentials, reg.revocation
        )
        sent = [row for row in reg.letters_by_envelope(named) if row.direction == "sent"]
    if not sent:
        flags.append("this register has no letter of yours in that envelope")
    elif to is not None and fingerprint(to) not in sent[0].recipients:
        flags.append(f"the pouch went to {names.get(to, fingerprint(to)[:16])}, whom your "
                     "letter in it is not addressed to")  # fmt: skip
    shown = _shown(names, [*credentials, *trailer.credentials.values()])
    # The chain's shape, every holder's accreditation, then the delivery.
    problems = [*verdict.problems, *verdict.flags]
    if trailer.envelope not in (None, named):
        problems.insert(0, "the handovers name another envelope than the receipt")
    problems += flags
    links = verdict.chain.links
    last = links[-1] if links else None
    taker = last.handover.taker if last else None
    if as_json:
        out = {
            "envelope": named,
            "delivered_to": None if to is None else fingerprint(to),
            "delivered_to_name": names.get(to) if to else None,
            "accepted_by": None if taker is None else fingerprint(taker),
            "receiver_name": receiver.agent_name if receiver else None,
            "accepted": last.acceptance.time if last and last.acceptance else None,
            "accepted_at": last.acceptance.place if last and last.acceptance else None,
            "links": len(links),
            "problems": problems,
            "verified": not problems,
        }
        click.echo(json.dumps(out, indent=2))
    else:

        def who(key: bytes) -> str:
            return shown.get(key, fingerprint(key)[:16])

        click.echo(f"Custody receipt for pouch {container.short_id(named)}  {named}")
        for link in links:
            hv, a = link.handover, link.acceptance
            at = f" at {hv.place}" if hv.place else ""
            took = f", accepted {a.time}" if a else ", never accepted"
            click.echo(f"  {hv.seq}. {hv.time}  {who(hv.giver)} -> {who(hv.taker)}{at}{took}")
        if to is not None and taker is not None and last is not None and last.acceptance:
            by = "" if receiver is None else f", by their receiver {who(taker)}"
            where = f" at {last.acceptance.place}" if last.acceptance.place else ""
            click.echo(f"  delivered to  {who(to)}{by}")
            click.echo(f"  accepted      {last.acceptance.time}{where}")
        for line in problems:
            click.echo(f"  ! {line}")
    if problems:
        raise CustodyError("the custody receipt does not prove delivery", *problems[:3])
    if last is not None and last.acceptance is not None and taker is not None:
        with h.register() as reg:
            reg.add_receipt(sent[0].id, last.acceptance.hash, "custody", fingerprint(taker),
                            last.acceptance.time)  # fmt: skip
    if not as_json:
        click.echo(
            "  verdict       delivered: every link signed by both parties, every holder "
            "accredited (not revoked as far as this register knows). The letter itself was "
            "not opened: a custody receipt proves the pouch arrived, not that it was read."
        )
