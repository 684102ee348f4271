"""pouch init, card, contacts, fingerprint, key: identities and contacts."""

from __future__ import annotations

import click

from ..errors import UsageError
from . import (
    _emit,
    _home,
    _read_card,
    _stdio,
    _unlock,
    cli,
    home_option,
    passphrase_file_option,
    read_passphrase,
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
    _emit(card.encode().decode() + "\n", _stdio(output))


@cli.group("contacts")
def contacts_group() -> None:
    """The people you correspond with, and how you verified them."""


@contacts_group.command("add")
@click.argument("file")
@click.option("--verified", is_flag=True, help="You compared the fingerprint in person.")
@home_option
def contacts_add(file: str, verified: bool, home: str | None) -> None:
    """Add the card in FILE to your contacts."""
    h = _home(home)
    h.card()
    c = h.add_contact(_read_card(file), verified)
    state = "verified" if c.verified else "NOT verified"
    click.echo(f"Added {c.name}  {c.fingerprint[:16]}  ({state})")
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
        import json

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
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not contacts:
        click.echo("no contacts yet: add a card with 'pouch contacts add FILE'")
    for c in contacts:
        state = f"verified {c.verified[:10]}" if c.verified else "NOT verified"
        click.echo(f"{c.fingerprint[:16]}  {state:<20} {c.name}")


@contacts_group.command("verify")
@click.argument("name")
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


@cli.command("fingerprint")
@click.argument("name", required=False)
@click.option("--no-qr", is_flag=True, help="Only the digits.")
@home_option
def fingerprint_command(name: str | None, no_qr: bool, home: str | None) -> None:
    """Show the safety number you share with NAME (or your own)."""
    from ..identity import safety_number

    h = _home(home)
    own = h.card()
    if name is None:
        title, digits = f"{own.name} (you)  {own.fingerprint}", safety_number(own.signing_key)
    else:
        c = h.find(name)
        title = f"{own.name} and {c.name}  {c.fingerprint}"
        digits = safety_number(own.signing_key, c.card.signing_key)
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
@click.option("--age", "as_age", is_flag=True, required=True, help="The age identity.")
@click.option("--classic", is_flag=True, help="The X25519 key, for age without post-quantum.")
@passphrase_file_option
@home_option
def key_export(as_age: bool, classic: bool, passphrase_file: str | None, home: str | None) -> None:
    """Print your age identity: any age implementation can then open your
    envelopes. It is a secret key: keep it as you keep identity.key."""
    identity = _unlock(_home(home), passphrase_file)
    click.echo(str(identity.x25519 if classic else identity.pq))
