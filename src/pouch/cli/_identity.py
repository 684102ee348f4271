"""pouch init, card, contacts, fingerprint, key: identities and contacts."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from . import (
    _emit,
    _home,
    _read_card,
    _stdio,
    _unlock,
    cli,
    complete_contact,
    echo_json,
    home_option,
    passphrase_file_option,
    read_passphrase,
    shown,
)


@cli.command("init")
@click.option("--name", required=True, help="Your name, as your correspondents will see it.")
@click.option("--no-passphrase", is_flag=True, help="Store the secret keys unencrypted.")
@passphrase_file_option
@home_option
def init_command(
    name: str, no_passphrase: bool, passphrase_file: str | None, home: str | None
) -> None:
    """Create your identity: a signing key and age encryption keys."""
    from ..identity import Identity, check_name, safety_number

    h = _home(home)
    identity = Identity.generate(check_name(name))
    if no_passphrase:
        passphrase = None
    else:
        passphrase = read_passphrase("New passphrase", confirm=True, file=passphrase_file)
    card = h.create(identity, passphrase)
    click.echo(f"Created the identity of {card.name} in {h.path}")
    click.echo(f"  fingerprint  {card.fingerprint}")
    click.echo(f"  number       {' '.join(safety_number(card.signing_key))}")
    click.echo(f"  card         {h.card_path}  (hand it over in person: 'pouch card')")
    if passphrase is None:
        click.echo(
            f"warning: the secret keys in {h.key_path} are not encrypted; anyone who can "
            "read that file can sign and open letters as you",
            err=True,
        )


@cli.command("card")
@click.option("-o", "--output", metavar="FILE", help="Write the card to FILE.")
@home_option
def card_command(output: str | None, home: str | None) -> None:
    """Export your public card, to hand over in person."""
    card = _home(home).card()
    # Public, and made to be handed over: readable by all (0644).
    _emit(card.encode().decode() + "\n", _stdio(output), 0o644)


@cli.group("contacts")
def contacts_group() -> None:
    """The people you correspond with, and how you verified them."""


@contacts_group.command("add")
@click.argument("file")
@click.option("--verified", is_flag=True, help="You compared the fingerprint in person.")
@click.option("--as", "name", metavar="NAME", help="Call them NAME (else the name on their card).")
@home_option
def contacts_add(file: str, verified: bool, name: str | None, home: str | None) -> None:
    """Add the card in FILE to your contacts."""
    from ..errors import NameTakenError

    h = _home(home)
    h.card()
    card = _read_card(file)
    try:
        c = h.add_contact(card, verified, name)
    except NameTakenError as e:
        how = f"another name: pouch contacts add {file} --as 'ANOTHER NAME'"
        raise NameTakenError(e.name, e.taken_by, e.fingerprint, how) from None
    state = "verified" if c.verified else "NOT verified"
    click.echo(f"Added {c.name}  {c.fingerprint[:16]}  ({state})")
    if c.name != card.name:
        click.echo(f"  their card calls them {shown(card.name)!r}", err=True)
    if not c.verified:
        click.echo(
            f"hint: compare 'pouch fingerprint {c.fingerprint[:16]}' with {c.name}, "
            f"then run 'pouch contacts verify {c.fingerprint[:16]}'",
            err=True,
        )


@contacts_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@home_option
def contacts_list(as_json: bool, home: str | None) -> None:
    """List your contacts."""
    contacts = _home(home).contacts()
    if as_json:
        rows = [
            {
                "name": c.name,
                "fingerprint": c.fingerprint,
                "verified": c.verified,
                "verified_how": c.verified_how,
                "added": c.added,
                "post_quantum": c.card.pq is not None,
            }
            for c in contacts
        ]
        echo_json(rows, indent=2, ensure_ascii=False)
        return
    if not contacts:
        click.echo("no contacts yet: add a card with 'pouch contacts add FILE'")
    for c in contacts:
        state = f"verified {c.verified[:10]}" if c.verified else "NOT verified"
        click.echo(f"{c.fingerprint[:16]}  {state:<20} {c.name}")


@contacts_group.command("verify")
@click.argument("name", shell_complete=complete_contact)
@click.option("--yes", is_flag=True, help="Do not ask: the numbers were compared.")
@home_option
def contacts_verify(name: str, yes: bool, home: str | None) -> None:
    """Mark NAME as verified, after comparing safety numbers."""
    from ..identity import safety_number

    h = _home(home)
    own = h.card()
    c = h.find(name)
    click.echo(f"{c.name}  {c.fingerprint}")
    click.echo("safety number: " + " ".join(safety_number(own.signing_key, c.card.signing_key)))
    if not yes and not click.confirm(
        f"Does {c.name} read you the same number?", default=False, err=True
    ):
        raise UsageError(f"{c.name} is not marked verified")
    c = h.mark_verified(c, "safety number compared")
    click.echo(f"{c.name} is verified.")


@contacts_group.command("rename")
@click.argument("name", shell_complete=complete_contact)
@click.argument("new_name")
@home_option
def contacts_rename(name: str, new_name: str, home: str | None) -> None:
    """Call the contact NAME by NEW_NAME from now on."""
    h = _home(home)
    c = h.rename_contact(h.find(name), new_name)
    click.echo(f"{c.fingerprint[:16]} is now called {shown(c.name)}")


@contacts_group.command("remove")
@click.argument("name", shell_complete=complete_contact)
@click.option("--yes", is_flag=True, help="Do not ask.")
@home_option
def contacts_remove(name: str, yes: bool, home: str | None) -> None:
    """Forget the contact NAME (the letters you exchanged stay in the register)."""
    h = _home(home)
    c = h.find(name)
    state = "verified" if c.verified else "not verified"
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            f"forgetting {shown(c.name)} needs a yes", "answer at a terminal, or give --yes"
        )
    if not yes and not click.confirm(
        f"Forget {shown(c.name)} {c.fingerprint[:16]} ({state})?", default=False, err=True
    ):
        raise UsageError(f"{shown(c.name)} is still a contact")
    h.remove_contact(c)
    click.echo(f"Removed {shown(c.name)}  {c.fingerprint[:16]}")


@cli.command("fingerprint")
@click.argument("name", required=False, shell_complete=complete_contact)
@click.option("--no-qr", is_flag=True, help="Only the digits.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@home_option
def fingerprint_command(name: str | None, no_qr: bool, as_json: bool, home: str | None) -> None:
    """Show the safety number you share with NAME (or your own)."""
    from ..identity import safety_number

    h = _home(home)
    own = h.card()
    if name is None:
        who, fp = f"{own.name} (you)", own.fingerprint
        title, digits = f"{who}  {fp}", safety_number(own.signing_key)
    else:
        c = h.find(name)
        who, fp = c.name, c.fingerprint
        title = f"{own.name} and {c.name}  {c.fingerprint}"
        digits = safety_number(own.signing_key, c.card.signing_key)
    if as_json:
        number = {"name": who, "fingerprint": fp, "safety_number": " ".join(digits)}
        echo_json(number, ensure_ascii=False, indent=2)
        return
    click.echo(title)
    for i in range(0, 12, 4):
        click.echo("    " + "  ".join(digits[i : i + 4]))
    if not no_qr:
        import segno

        segno.make("".join(digits), error="m").terminal(compact=True)


@cli.group("key")
def key_group() -> None:
    """Your secret keys."""


@key_group.command("export")
@click.option("--age", "as_age", is_flag=True, required=True, help="The age identities.")
@click.option("--classic", is_flag=True, help="Only the X25519 key, for age without post-quantum.")
@click.option("-o", "--output", metavar="FILE", help="Write them to FILE (mode 0600).")
@passphrase_file_option
@home_option
def key_export(
    as_age: bool, classic: bool, output: str | None, passphrase_file: str | None, home: str | None
) -> None:
    """Print your age identities, post-quantum and X25519: with them, any age
    implementation opens your envelopes, sealed either way (`age -d -i
    FILE`). They are secret keys: keep them as you keep identity.key."""
    from datetime import UTC, datetime

    from .._fields import rfc3339
    from .._io import atomic_output

    identity = _unlock(_home(home), passphrase_file)
    keys = [(str(identity.x25519.recipient), str(identity.x25519))]
    if not classic:
        keys.insert(0, (str(identity.pq.recipient), str(identity.pq)))
    text = f"# age identities of {identity.name}, exported {rfc3339(datetime.now(UTC))}\n"
    for public, secret in keys:
        text += f"# public key: {public}\n{secret}\n"
    out = _stdio(output)
    if out is None:
        click.echo(text, nl=False)
        return
    # Secret keys: the file is private from its first byte, and never
    # replaces another.
    with atomic_output(out, mode=0o600, replace=False) as f:
        f.write(text.encode())
    click.echo(f"Wrote {len(keys)} age identit{'y' if len(keys) == 1 else 'ies'} to {out} "
               "(mode 0600)", err=True)  # fmt: skip
