"""pouch letters, thread, db check, restore, transcript: the correspondence
ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import (
    _home,
    _post,
    _read_card,
    cli,
    complete_contact,
    echo_json,
    home_option,
    passphrase_file_option,
    shown,
)

if TYPE_CHECKING:
    from ..home import Home, LetterView


def _view(x: LetterView, names: dict[str, str]) -> dict[str, Any]:
    """A letter as `pouch letters --json` shows it."""
    return {
        "id": x.id,
        "envelope": x.envelope,
        "direction": x.direction,
        "kind": x.kind,
        "from": names.get(x.sender, x.sender),
        "to": [names.get(r, r) for r in x.recipients],
        "seq": x.seq,
        "stream": x.stream,
        "date": x.date,
        "subject": x.subject,
        "attachments": list(x.attachments),
        "in_reply_to": x.in_reply_to,
        "state": x.state,
        "written": x.written,
    }


def _fingerprint_names(home: Home) -> dict[str, str]:
    """What the ledger calls each fingerprint: contacts by name, and you."""
    names = {c.fingerprint: c.name for c in home.contacts()}
    names[home.card().fingerprint] = "you"
    return names


@cli.command("letters")
@click.argument("name", required=False, shell_complete=complete_contact)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@passphrase_file_option
@home_option
def letters_command(
    name: str | None, as_json: bool, passphrase_file: str | None, home: str | None
) -> None:
    """The correspondence (with NAME, or everyone): a timeline of letters
    sent and received, with threads, states, missing letters and forks."""
    post = _post(home, passphrase_file)
    ledger = post.ledger(name)
    names = _fingerprint_names(post.home)
    letters = [_view(x, names) for x in ledger.letters]
    missing = [
        {"from": names.get(m.sender, m.sender), "seq": m.seq, "stream": m.stream}
        for m in ledger.missing
    ]
    forks = [
        {"letter": f.letter, "other": f.other, "seq": f.seq, "found": f.found} for f in ledger.forks
    ]
    if as_json:
        echo_json({"letters": letters, "missing": missing, "forks": forks}, indent=2,
                              ensure_ascii=False)  # fmt: skip
        return
    _print_timeline(letters, missing, forks)


def _print_timeline(
    letters: list[dict[str, Any]], missing: list[dict[str, Any]], forks: list[dict[str, Any]]
) -> None:
    if not letters:
        click.echo("No letters yet.")
    by_id = {x["id"]: x for x in letters}
    for x in letters:
        arrow = "->" if x["direction"] == "sent" else "<-"
        other = ", ".join(x["to"]) if x["direction"] == "sent" else x["from"]
        kind = " [receipt]" if x["kind"] == "receipt" else ""
        seq = f"#{x['seq']}" if x["seq"] is not None else "  "
        click.echo(shown(f"{x['date']}  {arrow} {other:<18} {seq:>4}  {x['id'][:12]}  "
                         f"{x['subject'] or '(no subject)'}{kind}  [{x['state']}]"))  # fmt: skip
        if x["in_reply_to"]:
            parent = by_id.get(x["in_reply_to"])
            about = shown(parent["subject"]) if parent else "a letter not in this register"
            click.echo(f"{'':22}   in reply to {x['in_reply_to'][:12]} ({about})")
        if not x["written"] and x["direction"] == "sent":
            click.echo(f"{'':22}   never written out: run the same 'pouch seal' again")
    for m in missing:
        click.echo(shown(f"MISSING: letter #{m['seq']} from {m['from']} has not arrived"))
    for f in forks:
        click.echo(f"FORK: letters {f['letter'][:12]} and {f['other'][:12]} both claim #{f['seq']}")


@cli.command("thread")
@click.argument("letter_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@passphrase_file_option
@home_option
def thread_command(
    letter_id: str, as_json: bool, passphrase_file: str | None, home: str | None
) -> None:
    """One thread: the letter LETTER_ID (or 8 digits of it or its envelope), what it
    answers, and every answer to it, as a tree."""
    post = _post(home, passphrase_file)
    thread = post.thread(letter_id)
    names = _fingerprint_names(post.home)
    view = [(depth, _view(x, names)) for depth, x in thread.letters]
    if as_json:
        for depth, x in view:
            x["depth"] = depth
        echo_json({"thread": [x for _, x in view]}, indent=2, ensure_ascii=False)
        return
    for depth, x in view:
        arrow = "->" if x["direction"] == "sent" else "<-"
        other = ", ".join(x["to"]) if x["direction"] == "sent" else x["from"]
        mark = "*" if x["id"] == thread.chosen else " "
        click.echo(shown(f"{mark} {'  ' * depth}{x['date']}  {arrow} {other}  {x['id'][:12]}  "
                         f"{x['subject'] or '(no subject)'}  [{x['state']}]"))  # fmt: skip


@cli.group("db")
def db_group() -> None:
    """The register itself."""


@db_group.command("check")
@home_option
def db_check_command(home: str | None) -> None:
    """Check the register: SQLite's integrity check, then pouch's own
    (every stream's numbers and links, reservations, states, the archive).
    Exits 0 only when everything is clean."""
    from ..errors import FileError
    from ..home import check

    checked = check(_home(home))
    if checked.problems:
        for p in checked.problems:
            click.echo(f"  ! {p}")
        raise FileError(f"the register has {len(checked.problems)} problem(s)",
                        *checked.problems[:3])  # fmt: skip
    if checked.stray:
        click.echo(f"note: {checked.stray} archived container(s) belong to no letter: a seal "
                   "died after sealing, before recording; they can be deleted")  # fmt: skip
    click.echo(f"Register clean: {checked.letters} letter(s), SQLite integrity ok, every stream "
               "in order, every archived container intact.")  # fmt: skip


@cli.command("restore")
@home_option
def restore_command(home: str | None) -> None:
    """Start a new stream in this home: after restoring it from a backup,
    or on a second device made from a copy. Letters sealed from now on are
    numbered afresh and say where the old stream ended, so that no number
    is given out twice and correspondents can tell lost state from forgery."""
    from ..home import restore

    old, new = restore(_home(home))
    click.echo(f"New stream {new[:8]}; it continues {old[:8]}.")


@cli.group("transcript")
def transcript_group() -> None:
    """A correspondence, bundled for a third party to check offline."""


@transcript_group.command("export")
@click.argument("name", shell_complete=complete_contact)
@click.option("-o", "--output", metavar="FILE", required=True, help="Write the transcript to FILE.")
@click.option(
    "--decrypted",
    is_flag=True,
    help="Disclose each letter's keys, so that anyone can read and check it.",
)
@passphrase_file_option
@home_option
def transcript_export_command(
    name: str, output: str, decrypted: bool, passphrase_file: str | None, home: str | None
) -> None:
    """Export the correspondence with NAME: every letter, as archived.

    With --decrypted the transcript discloses each letter's file key and
    the two parties' order block keys: whoever holds it can read every
    letter in it (and nothing else), and check it with 'pouch transcript
    verify'. Without, it holds the sealed containers only.
    """
    count = _post(home, passphrase_file).export_transcript(name, Path(output), decrypted)
    what = "readable by whoever holds it" if decrypted else "sealed"
    click.echo(f"Transcript of {count} letter(s) with {name}, {what} -> {output}", err=True)


@transcript_group.command("verify")
@click.argument("file")
@click.option("--card", "cards", multiple=True, required=True, metavar="CARD",
              help="A party's card file (give both).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def transcript_verify_command(file: str, cards: tuple[str, ...], as_json: bool) -> None:
    """Check a transcript offline, against the two parties' cards: every
    letter's signatures (final segments included), every stream's order,
    every custody chain. Exits 0 only if everything verifies."""
    from ..errors import FileError, VerificationError
    from ..transcript import verify

    parties = [_read_card(c) for c in cards]
    try:
        src = open(file, "rb")
    except OSError as e:
        raise FileError(f"cannot read {file}: {e.strerror}") from None
    with src:
        report = verify(src, parties)
    if as_json:
        echo_json({
            "letters": report.letters, "verified": report.verified, "problems": report.problems,
            "warnings": report.warnings, "ok": not report.problems,
        }, indent=2)  # fmt: skip
    else:
        for line in report.lines:
            click.echo(shown(line))
        for w in report.warnings:
            click.echo(shown(f"  warning: {w}"))
        for p in report.problems:
            click.echo(shown(f"  ! {p}"))
    if report.problems:
        raise VerificationError(
            f"the transcript does not verify: {len(report.problems)} problem(s)",
            *report.problems[:3],
        )
    if not as_json:
        click.echo(f"Transcript verifies: {report.verified} letter(s), every signature, every "
                   "stream in order, every custody chain.")  # fmt: skip
