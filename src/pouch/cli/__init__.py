"""The pouch command line: a thin layer of click commands over the library
(the commands in README.md; their failures and exit codes, SPEC.md 1.3 and
README.md). Each command parses its options, calls one verb of the library
(a pouch.home.Post, pouch.age, pouch.paper) and renders what it returns.

Errors are caught once, in main(): a PouchError becomes "error:" and "hint:"
lines on stderr and its exit code (README.md lists them); anything else is a
bug, reported in one line (with the traceback only when POUCH_DEBUG is set).

Commands import the library parts they need when they run, so that a small
job (decrypting a 1 KB file) does not pay for what it does not use.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .. import __version__
from ..errors import FileError, PouchError, UsageError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from ..home import Contact, Home, Post
    from ..identity import Card, Identity

PASSPHRASE_ENV = "POUCH_PASSPHRASE"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


# Which module defines each command. A command's module is imported when the
# command is run (or help lists them all), so that `pouch handover` does not
# pay for importing sealing and opening: start-up is most of a small job.
_COMMANDS = {
    "age": "_age",
    "age-keygen": "_age",
    "init": "_identity",
    "card": "_identity",
    "contacts": "_identity",
    "fingerprint": "_identity",
    "key": "_identity",
    "seal": "_letters",
    "open": "_letters",
    "inspect": "_letters",
    "receipt": "_letters",
    "accredit": "_custody",
    "credentials": "_custody",
    "revoke": "_custody",
    "handover": "_custody",
    "accept": "_custody",
    "custody": "_custody",
    "answer": "_custody",
    "letters": "_ledger",
    "thread": "_ledger",
    "db": "_ledger",
    "restore": "_ledger",
    "transcript": "_ledger",
    "print": "_paper",
    "scan": "_paper",
}


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            import importlib

            # The module registers its commands on cli as it is imported.
            importlib.import_module(f"{__name__}.{_COMMANDS[cmd_name]}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pouch")
def cli() -> None:
    """pouch: sealed letters, carried by hand."""


# --- passphrases -------------------------------------------------------------


def read_passphrase(prompt: str, *, confirm: bool = False, file: str | None = None) -> bytes:
    """The passphrase from file (its first line), else POUCH_PASSPHRASE if
    set, else from the terminal. confirm: a new passphrase, typed twice, and
    a short one warned about.

    POUCH_PASSPHRASE is meant for scripts and tests: the environment of a
    process can be read by its owner and by root. Its bytes are taken as
    they are; a typed passphrase is encoded as UTF-8.
    """
    if file is not None:
        from ..age.keys import check_private

        check_private(file, "a passphrase")
        try:
            with open(file, "rb") as f:
                line = f.readline(4096).rstrip(b"\r\n")
        except OSError as e:
            raise FileError(f"cannot read {file}: {e.strerror}") from None
        if not line:
            raise UsageError(f"the passphrase file {file} is empty")
        if confirm and len(line) < SHORT_PASSPHRASE:
            _warn_short()
        return line
    value = os.environb.get(PASSPHRASE_ENV.encode())
    if value is not None:
        if not value:
            raise UsageError(f"{PASSPHRASE_ENV} is set but empty")
        if confirm and len(value) < SHORT_PASSPHRASE:
            _warn_short()
        return value
    # The terminal is /dev/tty, not stdin: stdin may be the letter itself.
    # getpass opens it again (in binary mode: a text-mode "r+" open of a tty
    # fails, not being seekable); this open only asks whether there is one,
    # so that getpass never falls back to reading stdin with echo on.
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        raise UsageError(
            "a passphrase is needed and there is no terminal to ask for it",
            f"run it at a terminal; scripts give --passphrase-file FILE where the command "
            f"offers it, or set {PASSPHRASE_ENV}",
        ) from None
    import getpass

    try:
        typed = getpass.getpass(prompt + ": ")
        if not typed:
            raise UsageError("the passphrase is empty")
        if confirm and len(typed) < SHORT_PASSPHRASE:
            _warn_short()
            if not _yes_at_the_terminal("Use it anyway? [y/N]: "):
                raise UsageError("no passphrase was chosen", "nothing was written; try again")
        if confirm and getpass.getpass("Confirm passphrase: ") != typed:
            raise UsageError("the passphrases did not match", "nothing was written; try again")
    except EOFError:
        click.echo(err=True)  # the prompt's line was left open
        raise UsageError("no passphrase was given (Ctrl-D)") from None
    return typed.encode("utf-8")


# A new passphrase shorter than this is warned about (and, typed, confirmed):
# it is all that protects a key file someone copied, and an offline guesser
# tries thousands of short ones for each long one.
SHORT_PASSPHRASE = 10


def _yes_at_the_terminal(question: str) -> bool:
    """Ask on /dev/tty, as the passphrase was: stdin may be what is being
    encrypted (pouch age -p < FILE)."""
    with open(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY), "r+b", buffering=0) as tty:
        tty.write(question.encode())
        answer = tty.readline(64)
    if not answer:
        raise EOFError
    return answer.strip().lower() in (b"y", b"yes")


def _warn_short() -> None:
    click.echo(
        f"warning: this passphrase is shorter than {SHORT_PASSPHRASE} characters; whoever copies "
        "the file it protects can try to guess it, offline and without limit",
        err=True,
    )


# --- shared helpers ------------------------------------------------------------


def _stdio(name: str | None) -> str | None:
    return None if name in (None, "-") else name


def _emit(text: str, out_path: str | None, mode: int | None = None) -> None:
    if out_path is None:
        click.echo(text, nl=False)
        return
    from .._io import atomic_output

    with atomic_output(out_path, mode) as f:
        f.write(text.encode())


def shown(text: str) -> str:
    """text safe for a terminal: what a sender controls (subject, names)
    could otherwise carry escape sequences that rewrite the screen, say
    over the From line, or invisible characters that disguise it."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


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


def complete_contact(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a contact's name (README: Shell completion): the
    names in the home given so far on the command line, else the default
    one, that start with what was typed, in any case."""
    from click.shell_completion import CompletionItem

    try:
        contacts = _home(ctx.params.get("home") or os.environ.get("POUCH_HOME")).contacts()
    except Exception:  # completing must never print an error into the shell
        return []
    typed = incomplete.casefold()
    # click's bash script reads each answer with `read` (which takes one
    # backslash away) and bash inserts it as it is: a space, unescaped,
    # would end the word.
    bash = os.environ.get("_POUCH_COMPLETE", "").startswith("bash")
    return [
        CompletionItem(c.name.replace(" ", "\\\\ ") if bash else c.name, help=c.fingerprint[:16])
        for c in contacts
        if c.name.casefold().startswith(typed)
    ]


def _home(path: str | None) -> Home:
    from ..home import Home

    return Home(path)


def _unlock(home: Home, passphrase_file: str | None) -> Identity:
    return home.unlock(
        lambda: read_passphrase(f"Passphrase for {home.key_path}", file=passphrase_file)
    )


def _post(home: str | None, passphrase_file: str | None) -> Post:
    """The home's Post; the passphrase is asked for when a workflow first
    needs the keys."""
    from ..home import Post

    h = _home(home)

    def waiting(what: str) -> None:
        click.echo(f"waiting for {what} to finish...", err=True)

    return Post(h, lambda: _unlock(h, passphrase_file), on_wait=waiting)


def _names(home: Home, contacts: list[Contact] | None = None, you: str = "you") -> dict[bytes, str]:
    """What this home calls each signing key: its contacts' names (those
    given, else the register's), and you."""
    if contacts is None:
        contacts = home.contacts()
    names = {c.card.signing_key: c.name for c in contacts}
    names[home.card().signing_key] = you
    return names


def _read_card(path: str) -> Card:
    from .._io import read_small
    from ..identity import Card
    from ..statements import MAX_ENVELOPE

    return Card.from_bytes(read_small(path, MAX_ENVELOPE, "a card").rstrip(b"\r\n"))


# --- entry point ----------------------------------------------------------------


class _Terminated(BaseException):
    """SIGTERM, raised so that cleanup (temporary files) runs on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


_reported = False  # a command printed its --json report


def echo_json(data: object, **options: Any) -> None:
    """Print a command's --json report (json.dumps options): after it, an
    error adds no second document to stdout."""
    import json

    global _reported
    click.echo(json.dumps(data, **options))
    _reported = True


def _json_error(
    argv: Sequence[str] | None, kind: str, message: str, hints: Sequence[str], code: int
) -> None:
    """With --json, the error goes to stdout as JSON too, for the program
    that reads it (a person reads stderr)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if _reported or "--json" not in args[: args.index("--") if "--" in args else None]:
        return  # a report already printed says what failed: one document
    import json

    error = {"kind": kind, "message": message, "hints": list(hints), "exit_code": code}
    with contextlib.suppress(OSError):
        click.echo(json.dumps({"error": error}, ensure_ascii=False))


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
        _json_error(argv, type(e).__name__, e.message, e.hints, e.exit_code)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()  # `pouch`, `pouch contacts` alone: the help, as asked for
        sys.exit(e.exit_code)
    except click.ClickException as e:
        # click's own errors (a missing option, an unknown command) in the
        # same form as pouch's: an error line, then what to do.
        hints = []
        ctx = getattr(e, "ctx", None)
        if ctx is not None:
            hints.append(f"'{ctx.command_path} --help' shows how to use it")
        click.echo(f"error: {e.format_message()}", err=True)
        for hint in hints:
            click.echo(f"hint: {hint}", err=True)
        _json_error(argv, "UsageError", e.format_message(), hints, e.exit_code)
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
