"""The pouch command line: a thin layer of click commands over the library.

Errors are caught once, in main(): a PouchError becomes "error:" and "hint:"
lines on stderr and its exit code (README.md lists them); anything else is a
bug, reported in one line (with the traceback only when POUCH_DEBUG is set).

Commands import the library parts they need when they run, so that a small
job (decrypting a 1 KB file) does not pay for what it does not use.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__
from .errors import FileError, PouchError, RefusedError, UsageError

if TYPE_CHECKING:
    from .age import Identity as AgeIdentity
    from .age import Recipient
    from .home import Home
    from .identity import Identity

PASSPHRASE_ENV = "POUCH_PASSPHRASE"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pouch")
def cli() -> None:
    """pouch: sealed letters, carried by hand."""


# --- passphrases -------------------------------------------------------------


def read_passphrase(prompt: str, *, confirm: bool = False, file: str | None = None) -> bytes:
    """The passphrase from file (its first line), else POUCH_PASSPHRASE if
    set, else from the terminal.

    POUCH_PASSPHRASE is meant for scripts and tests: the environment of a
    process can be read by its owner and by root. Its bytes are taken as
    they are; a typed passphrase is encoded as UTF-8.
    """
    if file is not None:
        try:
            with open(file, "rb") as f:
                line = f.readline(4096).rstrip(b"\r\n")
        except OSError as e:
            raise FileError(f"cannot read {file}: {e.strerror}") from None
        if not line:
            raise UsageError(f"the passphrase file {file} is empty")
        return line
    value = os.environb.get(PASSPHRASE_ENV.encode())
    if value is not None:
        if not value:
            raise UsageError(f"{PASSPHRASE_ENV} is set but empty")
        return value
    try:
        tty = open("/dev/tty", "r+")
    except OSError:
        raise UsageError(
            "a passphrase is needed and there is no terminal to ask for it",
            f"set {PASSPHRASE_ENV} (meant for scripts and tests)",
        ) from None
    import getpass

    try:
        with tty:
            typed = getpass.getpass(prompt + ": ", stream=tty)
            if confirm and getpass.getpass("Confirm passphrase: ", stream=tty) != typed:
                raise UsageError("the passphrases did not match")
    except EOFError:
        raise UsageError("no passphrase was given") from None
    if not typed:
        raise UsageError("the passphrase is empty")
    return typed.encode("utf-8")


# --- pouch age ----------------------------------------------------------------

AGE_USAGE = """Encrypt and decrypt files in the age v1 format, like the age CLI.

\b
    pouch age [-e] (-r RECIPIENT | -R PATH)... [-a] [-o OUTPUT] [INPUT]
    pouch age [-e] -p [-a] [-o OUTPUT] [INPUT]
    pouch age -d [-i PATH]... [-o OUTPUT] [INPUT]

INPUT defaults to standard input and OUTPUT to standard output ("-" names
them too). Armored input is detected when decrypting. A decrypted or
encrypted file appears only once complete: on any error, OUTPUT is not
written. From a regular file of 8 MiB or more to a regular file the payload
is processed on every core (-j sets how many).

Without -i, decryption asks for a passphrase (or reads POUCH_PASSPHRASE).
"""


def _stdio(name: str | None) -> str | None:
    return None if name in (None, "-") else name


@cli.command("age", help=AGE_USAGE, no_args_is_help=False)
@click.option("-e", "--encrypt", "encrypt_", is_flag=True, help="Encrypt (the default).")
@click.option("-d", "--decrypt", "decrypt_", is_flag=True, help="Decrypt.")
@click.option(
    "-r",
    "--recipient",
    "recipients",
    multiple=True,
    metavar="RECIPIENT",
    help="Encrypt to this age1… or age1pq1… recipient (repeatable).",
)
@click.option(
    "-R",
    "--recipients-file",
    "recipient_files",
    multiple=True,
    metavar="PATH",
    help="Encrypt to the recipients listed in PATH (repeatable).",
)
@click.option(
    "-i",
    "--identity",
    "identity_files",
    multiple=True,
    metavar="PATH",
    help="Decrypt with the secret keys in PATH (repeatable).",
)
@click.option("-p", "--passphrase", is_flag=True, help="Encrypt with a passphrase.")
@click.option("-a", "--armor", is_flag=True, help="Encrypt to a PEM-encoded (text) format.")
@click.option("-o", "--output", metavar="OUTPUT", help="Write the result to OUTPUT.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes (default: all cores).",
)
@click.argument("input", required=False, metavar="[INPUT]")
def age_command(
    encrypt_: bool,
    decrypt_: bool,
    recipients: tuple[str, ...],
    recipient_files: tuple[str, ...],
    identity_files: tuple[str, ...],
    passphrase: bool,
    armor: bool,
    output: str | None,
    jobs: int | None,
    input: str | None,
) -> None:
    in_path, out_path = _stdio(input), _stdio(output)
    if encrypt_ and decrypt_:
        raise UsageError("-e/--encrypt can't be used with -d/--decrypt")
    if decrypt_:
        if armor:
            raise UsageError(
                "-a/--armor can't be used with -d/--decrypt",
                "armored files are detected automatically: try again without -a",
            )
        if passphrase:
            raise UsageError(
                "-p/--passphrase can't be used with -d/--decrypt",
                "passphrase-encrypted files are detected: try again without -p",
            )
        if recipients or recipient_files:
            raise UsageError(
                "-r/--recipient and -R/--recipients-file can't be used with -d/--decrypt",
                "did you mean -i/--identity?",
            )
        _age_decrypt(identity_files, in_path, out_path, jobs)
        return
    if identity_files:
        raise UsageError(
            "-i/--identity is for decryption", "did you mean -d -i, or -r/-R to encrypt?"
        )
    if passphrase and (recipients or recipient_files):
        raise UsageError("-p/--passphrase can't be combined with -r/--recipient or -R")
    if not passphrase and not (recipients or recipient_files):
        raise UsageError(
            "missing recipients",
            "give -r/--recipient, -R/--recipients-file or -p/--passphrase",
            "did you mean to decrypt? use -d/--decrypt",
        )
    if out_path is None and not armor and sys.stdout.isatty():
        raise RefusedError(
            "refusing to write binary output to the terminal",
            "did you mean to use -a/--armor?",
            "or write to a file with -o/--output",
        )
    _age_encrypt(recipients, recipient_files, passphrase, armor, in_path, out_path, jobs)


def _age_encrypt(
    recipient_args: Sequence[str],
    recipient_files: Sequence[str],
    passphrase: bool,
    armor: bool,
    in_path: str | None,
    out_path: str | None,
    jobs: int | None,
) -> None:
    from . import age
    from .age import keys

    recipients: list[Recipient] = []
    if passphrase:
        recipients.append(age.ScryptRecipient(read_passphrase("Enter passphrase", confirm=True)))
    recipients += [keys.parse_recipient(r) for r in recipient_args]
    for path in recipient_files:
        if path == "-":
            raise UsageError("reading recipients from standard input is not supported")
        recipients += keys.read_recipients_file(path)
    age.encrypt_file(in_path, out_path, recipients, armor=armor, jobs=jobs)


def _age_decrypt(
    identity_files: Sequence[str], in_path: str | None, out_path: str | None, jobs: int | None
) -> None:
    from . import age
    from .age import keys

    identities: list[AgeIdentity] = []
    for path in identity_files:
        if path == "-":
            raise UsageError("reading identities from standard input is not supported")
        identities += keys.read_identities_file(path, read_passphrase)
    if not identities:
        # Asked for only if the file turns out to be passphrase-encrypted.
        identities.append(age.ScryptIdentity(lambda: read_passphrase("Enter passphrase")))
    age.decrypt_file(in_path, out_path, identities, jobs=jobs)


# --- pouch age-keygen -----------------------------------------------------------

KEYGEN_USAGE = """Generate an age identity, like age-keygen.

\b
    pouch age-keygen [--pq] [-o OUTPUT]
    pouch age-keygen -y [-o OUTPUT] [INPUT]

The new identity is written to OUTPUT (created with mode 0600, never
overwritten) or to standard output; its public key is shown on standard
error. --pq makes a post-quantum (mlkem768x25519) identity. -y prints the
recipients of the identities in INPUT.
"""


@cli.command("age-keygen", help=KEYGEN_USAGE)
@click.option("-o", "--output", metavar="OUTPUT", help="Write the result to OUTPUT.")
@click.option("--pq", is_flag=True, help="Generate a post-quantum identity.")
@click.option("-y", "convert", is_flag=True, help="Print the recipients of an identity file.")
@click.argument("input", required=False, metavar="[INPUT]")
def age_keygen_command(output: str | None, pq: bool, convert: bool, input: str | None) -> None:
    from datetime import datetime

    from .age import HybridIdentity, X25519Identity, keys

    out_path = _stdio(output)
    if convert:
        if pq:
            raise UsageError("--pq can't be used with -y")
        in_path = _stdio(input)
        if in_path is None:
            raise UsageError("-y needs the identity file as INPUT")
        text = "".join(
            f"{i.recipient}\n" for i in keys.read_identities_file(in_path, read_passphrase)
        )
        _emit(text, out_path)
        return
    if input is not None:
        raise UsageError("INPUT is only for -y", "to save the new identity, use -o OUTPUT")
    identity = HybridIdentity.generate() if pq else X25519Identity.generate()
    text = keys.identity_file_text(identity, datetime.now().astimezone())
    if out_path is not None:
        keys.write_identity_file(out_path, text)
    else:
        click.echo(text, nl=False)
    if out_path is not None or not sys.stdout.isatty():
        click.echo(f"Public key: {identity.recipient}", err=True)


def _emit(text: str, out_path: str | None) -> None:
    if out_path is None:
        click.echo(text, nl=False)
        return
    from ._io import atomic_output

    with atomic_output(out_path) as f:
        f.write(text.encode())


# --- identities and contacts ---------------------------------------------------

home_option = click.option(
    "--home",
    metavar="DIR",
    envvar="POUCH_HOME",
    help="The pouch home (default: $POUCH_HOME, else the user-data folder).",
)
passphrase_file_option = click.option(
    "--passphrase-file",
    metavar="FILE",
    help="Read the passphrase from FILE's first line (else POUCH_PASSPHRASE, else a prompt).",
)


def _home(path: str | None) -> Home:
    from .home import Home

    return Home(path)


def _now() -> str:
    from datetime import UTC, datetime

    from .identity import rfc3339

    return rfc3339(datetime.now(UTC))


def _unlock(home: Home, passphrase_file: str | None) -> Identity:
    return home.unlock(
        lambda: read_passphrase(f"Passphrase for {home.key_path}", file=passphrase_file)
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
    from .identity import Identity, check_name, safety_number

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
    from .identity import Card

    h = _home(home)
    own = h.card()
    try:
        with open(file, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise FileError(f"cannot read {file}: {e.strerror}") from None
    card = Card.from_bytes(data.rstrip(b"\r\n"))
    if card.fingerprint == own.fingerprint:
        raise UsageError("that is your own card")
    with h.register() as reg:
        c = reg.add_contact(card, _now(), "in person, at import" if verified else None)
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
    with _home(home).register() as reg:
        contacts = reg.contacts()
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
    from .identity import safety_number

    h = _home(home)
    own = h.card()
    with h.register() as reg:
        c = reg.find(name)
        click.echo(f"{c.name}  {c.fingerprint}")
        click.echo("safety number: " + " ".join(safety_number(own.signing_key, c.card.signing_key)))
        if not yes and not click.confirm(
            f"Does {c.name} read you the same number?", default=False, err=True
        ):
            raise UsageError(f"{c.name} is not marked verified")
        c = reg.mark_verified(c.fingerprint, _now(), "safety number compared")
    click.echo(f"{c.name} is verified.")


@cli.command("fingerprint")
@click.argument("name", required=False)
@click.option("--no-qr", is_flag=True, help="Only the digits.")
@home_option
def fingerprint_command(name: str | None, no_qr: bool, home: str | None) -> None:
    """Show the safety number you share with NAME (or your own)."""
    from .identity import safety_number

    h = _home(home)
    own = h.card()
    if name is None:
        title, digits = f"{own.name} (you)  {own.fingerprint}", safety_number(own.signing_key)
    else:
        with h.register() as reg:
            c = reg.find(name)
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


# --- entry point ----------------------------------------------------------------


class _Terminated(BaseException):
    """SIGTERM, raised so that cleanup (temporary files) runs on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI; errors become messages and exit codes, never tracebacks."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rc = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="pouch",
            standalone_mode=False,
        )
    except PouchError as e:
        click.echo(e.diagnostics(), err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except _Terminated:
        click.echo("error: terminated", err=True)
        sys.exit(EXIT_TERMINATED)
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as e:
        if os.environ.get("POUCH_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(e).__name__}: {e}", err=True)
        click.echo("hint: this is a bug in pouch; run with POUCH_DEBUG=1 for details", err=True)
        sys.exit(1)
    # --help and --version end with click's own exit code; commands with 0.
    sys.exit(rc if isinstance(rc, int) else 0)
