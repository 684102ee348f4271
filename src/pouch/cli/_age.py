"""pouch age and pouch age-keygen: drop-ins for the age CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .. import __version__
from ..errors import RefusedError, UsageError
from . import _emit, _stdio, cli, read_passphrase
from ._progress import progress, size_of

if TYPE_CHECKING:
    from ..age import Identity, Recipient


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


@cli.command("age", help=AGE_USAGE, no_args_is_help=False)
@click.version_option(__version__, prog_name="pouch age")
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
    from .. import age
    from ..age import keys

    recipients: list[Recipient] = []
    if passphrase:
        recipients.append(age.ScryptRecipient(read_passphrase("Enter passphrase", confirm=True)))
    recipients += [keys.parse_recipient(r) for r in recipient_args]
    for path in recipient_files:
        if path == "-":
            raise UsageError("reading recipients from standard input is not supported")
        recipients += keys.read_recipients_file(path)
    with progress("Encrypting", size_of(in_path), out_path is not None):
        age.encrypt_file(in_path, out_path, recipients, armor=armor, jobs=jobs)


def _age_decrypt(
    identity_files: Sequence[str], in_path: str | None, out_path: str | None, jobs: int | None
) -> None:
    from .. import age
    from ..age import keys

    identities: list[Identity] = []
    for path in identity_files:
        if path == "-":
            raise UsageError("reading identities from standard input is not supported")
        identities += keys.read_identities_file(path, read_passphrase)
    asking = False

    def passphrase() -> bytes:
        nonlocal asking
        asking = True  # no bar over the prompt
        try:
            return read_passphrase("Enter passphrase")
        finally:
            asking = False

    if not identities:
        # Asked for only if the file turns out to be passphrase-encrypted.
        identities.append(age.ScryptIdentity(passphrase))
    with progress("Decrypting", size_of(in_path), out_path is not None, ready=lambda: not asking):
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
@click.version_option(__version__, prog_name="pouch age-keygen")
@click.option("-o", "--output", metavar="OUTPUT", help="Write the result to OUTPUT.")
@click.option("--pq", is_flag=True, help="Generate a post-quantum identity.")
@click.option("-y", "convert", is_flag=True, help="Print the recipients of an identity file.")
@click.argument("input", required=False, metavar="[INPUT]")
def age_keygen_command(output: str | None, pq: bool, convert: bool, input: str | None) -> None:
    from datetime import datetime

    from ..age import HybridIdentity, X25519Identity, keys

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
