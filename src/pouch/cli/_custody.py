"""pouch accredit, credentials, revoke: accreditation of envoys and receivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from ..errors import UsageError
from . import _emit, _home, _now, _stdio, _unlock, cli, home_option, passphrase_file_option


def _when(text: str | None, default: datetime) -> datetime:
    """RFC 3339 UTC (2018-05-29T00:00:00Z) or a date (2018-05-29, midnight UTC)."""
    if text is None:
        return default
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise UsageError(f"{text!r} is not a date", "write 2018-05-29 or 2018-05-29T09:00:00Z")


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
    import os

    from .._io import read_small
    from ..credentials import DEFAULT_DAYS, accredit
    from ..identity import Card
    from ..statements import MAX_ENVELOPE

    h = _home(home)
    with h.register() as reg:
        if os.path.isfile(agent):
            card = Card.from_bytes(read_small(agent, MAX_ENVELOPE, "a card").rstrip(b"\r\n"))
        else:
            card = reg.find(agent).card
        scoped = [reg.find(name).fingerprint for name in scope]
    now = datetime.now(UTC).replace(microsecond=0)
    valid_from = _when(start, now)
    valid_until = _when(until, valid_from + timedelta(days=DEFAULT_DAYS))
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
@home_option
def credentials_add(file: str, home: str | None) -> None:
    """Keep the credential in FILE (given to you, or found in a trailer)."""
    from .._io import read_small
    from ..credentials import Credential
    from ..statements import MAX_ENVELOPE

    credential = Credential.from_bytes(read_small(file, MAX_ENVELOPE, "a credential").strip())
    with _home(home).register() as reg:
        reg.add_credential(credential, None, _now())
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
