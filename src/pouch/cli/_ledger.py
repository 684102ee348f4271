"""pouch letters, thread, db check, restore: the correspondence ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ..errors import UsageError
from . import _home, _unlock, cli, home_option, passphrase_file_option, shown

if TYPE_CHECKING:
    from ..identity import Identity
    from ..register import LetterRow, Register


def _ledger_view(
    reg: Register,
    identity: Identity,
    rows: list[LetterRow],
    names: dict[str, str],
    them: str | None,
) -> list[dict[str, Any]]:
    """Each letter as `pouch letters --json` shows it."""
    from ..ledger import open_private

    out = []
    for row in rows:
        private = open_private(identity, row.id, row.private)
        positions = reg.positions_of(row.id)
        seqs = {p.recipient: p.seq for p in positions}
        if row.direction == "received":
            seq = seqs.get(identity.fingerprint)
        else:
            seq = seqs.get(them) if them else seqs.get(row.recipients[0])
        out.append({
            "id": row.id,
            "envelope": row.envelope,
            "direction": row.direction,
            "kind": row.kind,
            "from": names.get(row.sender, row.sender),
            "to": [names.get(r, r) for r in row.recipients],
            "seq": seq,
            "stream": row.stream,
            "date": row.date,
            "subject": private.get("subject", ""),
            "attachments": private.get("parts", []),
            "in_reply_to": row.in_reply_to,
            "state": row.state,
            "written": row.published,
        })  # fmt: skip
    return out


def _missing(
    reg: Register, me: str, them: str | None, names: dict[str, str]
) -> list[dict[str, Any]]:
    """Letters to me that have not arrived: numbers below one that did, in
    each sender's stream (at most MAX_LISTED per stream, one by one)."""
    from ..ledger import MAX_LISTED, first_numbers, missing_ranges

    missing = []
    senders = {p.sender for p in reg.all_positions() if p.recipient == me and p.sender != me}
    for sender in sorted(senders):
        if them is not None and sender != them:
            continue
        for stream in reg.streams(sender, me):
            held = reg.kept_seqs(sender, me, stream)
            gaps = missing_ranges(held, max(held, default=0))
            for n in first_numbers(gaps, MAX_LISTED):
                missing.append({"from": names.get(sender, sender), "seq": n, "stream": stream})
    return missing


@cli.command("letters")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@passphrase_file_option
@home_option
def letters_command(
    name: str | None, as_json: bool, passphrase_file: str | None, home: str | None
) -> None:
    """The correspondence (with NAME, or everyone): a timeline of letters
    sent and received, with threads, states, missing letters and forks."""
    h = _home(home)
    identity = _unlock(h, passphrase_file)
    me = identity.fingerprint
    with h.register() as reg:
        names = {c.fingerprint: c.name for c in reg.contacts()}
        names[me] = "you"
        them = reg.find(name).fingerprint if name else None
        rows = [
            r for r in reg.all_letters()
            if them is None or r.sender == them or (r.sender == me and them in r.recipients)
        ]  # fmt: skip
        letters = _ledger_view(reg, identity, rows, names, them)
        missing = _missing(reg, me, them, names)
        ids = {r.id for r in rows}
        forks = [
            {"letter": a, "other": b, "seq": seq, "found": found}
            for a, b, seq, found in reg.forks()
            if a in ids or b in ids
        ]
    if as_json:
        click.echo(json.dumps({"letters": letters, "missing": missing, "forks": forks}, indent=2,
                              ensure_ascii=False))  # fmt: skip
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
    """One thread: the letter LETTER_ID (or an 8-digit prefix), what it
    answers, and every answer to it, as a tree."""
    from ..register import MIN_PREFIX

    q = letter_id.lower()
    if len(q) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in q):
        raise UsageError("a letter is named by its id, or at least 8 of its first digits")
    h = _home(home)
    identity = _unlock(h, passphrase_file)
    with h.register() as reg:
        names = {c.fingerprint: c.name for c in reg.contacts()}
        names[identity.fingerprint] = "you"
        rows = reg.all_letters()
        found = [r for r in rows if r.id.startswith(q)]
        if not found:
            raise UsageError(
                f"no letter {letter_id!r} in this register", "'pouch letters' lists them"
            )
        if len(found) > 1:
            raise UsageError(f"{letter_id!r} names {len(found)} letters: give more digits")
        by_id = {r.id: r for r in rows}
        root = found[0]
        seen = {root.id}
        while root.in_reply_to in by_id and root.in_reply_to not in seen:
            root = by_id[root.in_reply_to]
            seen.add(root.id)
        children: dict[str, list[LetterRow]] = {}
        for r in rows:
            if r.in_reply_to is not None:
                children.setdefault(r.in_reply_to, []).append(r)
        order: list[tuple[int, LetterRow]] = []

        def walk(r: LetterRow, depth: int, path: set[str]) -> None:
            order.append((depth, r))
            for child in children.get(r.id, []):
                if child.id not in path:
                    walk(child, depth + 1, path | {child.id})

        walk(root, 0, {root.id})
        view = _ledger_view(reg, identity, [r for _, r in order], names, None)
    if as_json:
        for (depth, _), x in zip(order, view, strict=True):
            x["depth"] = depth
        click.echo(json.dumps({"thread": view}, indent=2, ensure_ascii=False))
        return
    for (depth, r), x in zip(order, view, strict=True):
        arrow = "->" if x["direction"] == "sent" else "<-"
        other = ", ".join(x["to"]) if x["direction"] == "sent" else x["from"]
        mark = "*" if r.id == found[0].id else " "
        click.echo(shown(f"{mark} {'  ' * depth}{x['date']}  {arrow} {other}  {r.id[:12]}  "
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
    from ..ledger import check

    h = _home(home)
    with h.register() as reg:
        problems = check(reg)
        letters = reg.all_letters()
    from .. import container
    from ..errors import PouchError

    for row in letters:
        kept = h.archive(row.envelope)
        if not kept.is_file():
            problems.append(f"letter {row.id[:16]}: its container is not in the archive")
            continue
        # The archive shares its files with the ones sealed or opened where
        # it can (hard links): one overwritten in place shows here.
        try:
            c = container.load(kept)
            with c.src:
                same = c.envelope_id() == row.envelope
        except PouchError:
            same = False
        if not same:
            problems.append(f"letter {row.id[:16]}: its archived container no longer hashes to "
                            "its envelope id (overwritten through a hard link?)")  # fmt: skip
    known = {f"{row.envelope}.pouch" for row in letters}
    stray = [p for p in h.archive().iterdir() if p.name not in known]
    if problems:
        for p in problems:
            click.echo(f"  ! {p}")
        raise FileError(f"the register has {len(problems)} problem(s)", *problems[:3])
    if stray:
        click.echo(f"note: {len(stray)} archived container(s) belong to no letter: a seal "
                   "died after sealing, before recording; they can be deleted")  # fmt: skip
    click.echo(f"Register clean: {len(letters)} letter(s), SQLite integrity ok, every stream "
               "in order, every archived container intact.")  # fmt: skip


@cli.command("restore")
@home_option
def restore_command(home: str | None) -> None:
    """Start a new stream in this home: after restoring it from a backup,
    or on a second device made from a copy. Letters sealed from now on are
    numbered afresh and say where the old stream ended, so that no number
    is given out twice and correspondents can tell lost state from forgery."""
    from .. import letters

    h = _home(home)
    h.card()
    with h.register() as reg:
        old, new = reg.new_stream(letters.new_stream_id)
    click.echo(f"New stream {new[:8]}; it continues {old[:8]}.")


@cli.group("transcript")
def transcript_group() -> None:
    """A correspondence, bundled for a third party to check offline."""


@transcript_group.command("export")
@click.argument("name")
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
    from datetime import UTC, datetime

    from .. import letters
    from .._io import atomic_output
    from ..identity import rfc3339
    from ..transcript import Entry, write

    h = _home(home)
    identity = _unlock(h, passphrase_file)
    me = identity.fingerprint
    with h.register() as reg:
        them = reg.find(name).fingerprint
        rows = [
            r for r in reg.all_letters()
            if r.sender in (me, them) and {me, them} <= {r.sender, *r.recipients}
        ]  # fmt: skip
        blocks = {
            r.id: {p.recipient: p.block_key for p in reg.positions_of(r.id)
                   if p.recipient in (me, them) and p.block_key is not None}
            for r in rows
        }  # fmt: skip
    from .. import container
    from ..errors import FileError

    entries = []
    for r in rows:
        kept = h.archive(r.envelope)
        c = container.load(kept)
        with c.src:
            if c.envelope_id() != r.envelope:
                raise FileError(
                    f"the archived container of letter {r.id[:16]} was altered",
                    "run 'pouch db check'",
                )
        key = letters.disclose(identity, kept) if decrypted else None
        entries.append(Entry(r.id, r.envelope, key, blocks[r.id] if decrypted else {}))

    def one_at_a_time() -> Iterator[BinaryIO]:
        # Never all at once: a correspondence of thousands of letters
        # would run out of file descriptors.
        for r in rows:
            with open(h.archive(r.envelope), "rb") as f:
                yield f

    with atomic_output(output, replace=False) as dst:
        write(dst, [me, them], rfc3339(datetime.now(UTC)), entries, one_at_a_time())
    what = "readable by whoever holds it" if decrypted else "sealed"
    click.echo(f"Transcript of {len(rows)} letter(s) with {name}, {what} -> {output}", err=True)


@transcript_group.command("verify")
@click.argument("file")
@click.option("--card", "cards", multiple=True, required=True, metavar="CARD",
              help="A party's card file (give both).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def transcript_verify_command(file: str, cards: tuple[str, ...], as_json: bool) -> None:
    """Check a transcript offline, against the two parties' cards: every
    letter's signatures (final segments included), every stream's order,
    every custody chain. Exits 0 only if everything verifies."""
    from .._io import read_small
    from ..errors import FileError, VerificationError
    from ..identity import Card
    from ..statements import MAX_ENVELOPE
    from ..transcript import verify

    parties = [
        Card.from_bytes(read_small(c, MAX_ENVELOPE, "a card").rstrip(b"\r\n")) for c in cards
    ]
    try:
        src = open(file, "rb")
    except OSError as e:
        raise FileError(f"cannot read {file}: {e.strerror}") from None
    with src:
        report = verify(src, parties)
    if as_json:
        click.echo(json.dumps({
            "letters": report.letters, "verified": report.verified, "problems": report.problems,
            "warnings": report.warnings, "ok": not report.problems,
        }, indent=2))  # fmt: skip
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
