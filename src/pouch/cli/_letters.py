"""pouch seal, open, inspect, receipt: sealed letters."""

from __future__ import annotations

import base64
import io
import shutil
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ..errors import RefusedError, UsageError
from . import (
    _home,
    _names,
    _post,
    _stdio,
    cli,
    complete_contact,
    echo_json,
    home_option,
    passphrase_file_option,
    shown,
)
from ._progress import progress, size_of
from ._terminal import Typed, write_body

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..home import Contact, CustodyReport, Received
    from ..letter import KemChoice


@cli.command("seal")
@click.option(
    "-t",
    "--to",
    "to",
    multiple=True,
    required=True,
    metavar="NAME",
    shell_complete=complete_contact,
    help="A recipient: a contact's name or fingerprint prefix (repeatable).",
)
@click.option("--subject", default="", help="The subject line (signed, and secret).")
@click.option("--reply-to", metavar="LETTER_ID", help="The letter this one answers.")
@click.option(
    "-A", "--attach", "attachments", multiple=True, metavar="FILE", help="Attach FILE (repeatable)."
)
@click.option("-o", "--output", metavar="OUT", help="Where to write the .pouch ('-': stdout).")
@click.option("--armor", is_flag=True, help="Write the container as text (PEM).")
@click.option("--pad", is_flag=True, help="Hide the size and the number of recipients.")
@click.option("--pq", "kem", flag_value="pq", help="Refuse anything but post-quantum.")
@click.option("--classic", "kem", flag_value="classic", help="X25519 only, for old age readers.")
@click.option("--allow-unverified", is_flag=True, help="Seal to contacts never verified.")
@passphrase_file_option
@home_option
@click.argument("body", required=False, metavar="[BODY_FILE | -]")
def seal_command(
    to: tuple[str, ...],
    subject: str,
    reply_to: str | None,
    attachments: tuple[str, ...],
    output: str | None,
    armor: bool,
    pad: bool,
    kem: KemChoice | None,
    allow_unverified: bool,
    passphrase_file: str | None,
    home: str | None,
    body: str | None,
) -> None:  # fmt: skip
    """Seal a letter to one or more contacts.

    The body comes from BODY_FILE or standard input. The result is a .pouch
    container: an age envelope (post-quantum whenever every recipient has a
    post-quantum key) around a letter signed segment by segment.
    """
    from ..container import short_id
    from ..letter import PQ

    post = _post(home, passphrase_file)
    now = datetime.now(UTC)
    out = _stdio(output) if output is not None else _default_name(now, armor)
    if out is None and not armor and sys.stdout.isatty():
        raise RefusedError(
            "refusing to write a binary container to the terminal", "use --armor, or -o FILE"
        )
    recipients: Sequence[Contact | str] = to
    if body not in (None, "-"):
        source: str | BinaryIO = body
    elif sys.stdin.isatty():
        # Typed at the terminal: the names are checked and the passphrase
        # asked first (a typo or a wrong passphrase does not cost the
        # letter), then the letter is taken, and an empty one refused.
        recipients = [post.home.find(name) for name in to]
        post.identity  # noqa: B018 - unlocks now
        text = io.BufferedReader(Typed()).read()
        if not text.strip():
            raise UsageError("the letter is empty: nothing was sealed")
        source = io.BytesIO(text)
    else:
        source = sys.stdin.buffer
    # No bar over a container written to the terminal.
    with progress("Sealing", size_of(body, *attachments), out is not None,
                  ready=lambda: post.unlocked):  # fmt: skip
        sent = post.send(
            recipients, source,
            sys.stdout.buffer if out is None else out, attachments=attachments,
            subject=subject, in_reply_to=reply_to, kem=kem, pad=pad, armor=armor,
            allow_unverified=allow_unverified, now=now,
        )  # fmt: skip
    where = "standard output" if out is None else out
    if sent.completed:
        click.echo(f"Already sealed by this command ({sent.date}); written out", err=True)
        click.echo(f"  letter    {sent.letter_id}", err=True)
        click.echo(f"  envelope  {short_id(sent.envelope_id)}  {sent.envelope_id}", err=True)
        click.echo(f"  written   -> {where}", err=True)
        return
    kind = "post-quantum" if sent.kem == PQ else "classic (X25519)"
    click.echo(f"Sealed to {', '.join(c.name for c in sent.to)}  ({sent.date})", err=True)
    click.echo(f"  letter    {sent.letter_id}", err=True)
    click.echo(f"  envelope  {short_id(sent.envelope_id)}  {sent.envelope_id}", err=True)
    click.echo(f"  sealed    {kind}, {sent.size:,} bytes -> {where}", err=True)
    if sent.kem != PQ and kem != "classic":
        missing = ", ".join(c.name for c in sent.to if c.card.pq is None)
        click.echo(f"warning: sealed classic: {missing} has no post-quantum key", err=True)


def _default_name(now: datetime, armor: bool) -> str:
    return f"letter-{now.strftime('%Y%m%dT%H%M%SZ')}.pouch" + (".txt" if armor else "")


@cli.command("open")
@click.argument("file")
@click.option(
    "-o", "--output", "directory", metavar="DIR", help="Save the body and attachments in DIR."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@click.option(
    "--stream",
    is_flag=True,
    help="Release the body on stdout as its segments verify, before the end.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist in DIR.")
@click.option(
    "--require-accredited",
    is_flag=True,
    help="Refuse the letter unless its custody chain is whole and every holder accredited.",
)
@click.option("--receipt", metavar="OUT", help="Seal a delivery receipt to the sender into OUT.")
@passphrase_file_option
@home_option
def open_command(
    file: str,
    directory: str | None,
    as_json: bool,
    stream: bool,
    force: bool,
    require_accredited: bool,
    receipt: str | None,
    passphrase_file: str | None,
    home: str | None,
) -> None:  # fmt: skip
    """Open a sealed letter: decrypt it, verify every signature, show it.

    FILE is a .pouch container, its armored form, or a bare age file.
    Nothing is released before the final segment verified (unless --stream
    is given): files go into DIR under temporary names and are named at the
    end; without DIR the body is shown on stdout.
    """
    from ..container import short_id

    if stream and (directory or as_json):
        raise UsageError("--stream writes the body to stdout: it can't be used with -o or --json")
    post = _post(home, passphrase_file)
    with progress("Opening", size_of(file), not (as_json or stream), ready=lambda: post.unlocked):
        received = post.receive(file, directory, stream=sys.stdout.buffer if stream else None,
                                force=force, require_accredited=require_accredited)  # fmt: skip
    if receipt is not None:
        # Only now: the final segment verified and the parts are published.
        sent = post.send_receipt(received, receipt)
        click.echo(
            f"Receipt:     sealed to {sent.to[0].name} -> {receipt}  "
            f"(envelope {short_id(sent.envelope_id)})",
            err=True,
        )
    contacts = post.home.contacts()
    sender = next(
        (c for c in contacts if c.fingerprint == received.opened.sender_fingerprint), None
    )
    names = _names(post.home, contacts, you=f"{post.card.name} (you)")
    mine = received.opened.sender_fingerprint == post.card.fingerprint
    summary = _summary(received, sender, names, post.card.name if mine else None)
    summary["custody"] = _custody(received.custody, _names(post.home, contacts))
    summary["order"] = {
        "arrival": received.arrival.kind,
        "stream": received.opened.header.stream,
        "seq": received.opened.order.seq if received.opened.order else None,
        "missing": received.arrival.missing,
        "notes": received.arrival.notes,
    }
    if as_json:
        if received.body is not None:
            try:
                summary["body"] = received.body.decode("utf-8")
            except UnicodeDecodeError:
                summary["body_base64"] = base64.b64encode(received.body).decode()
        echo_json(summary, indent=2, ensure_ascii=False)
    else:
        # The header first, warnings and all, then the body. At a terminal
        # the body is fenced and every line of it indented, so that nothing
        # it holds (a "From: ... (verified)" line) can pass for the header.
        _print_summary(summary, sender)
        if received.body is not None:
            write_body(received.body)


def _summary(
    received: Received, sender: Contact | None, names: dict[bytes, str], me: str | None
) -> dict[str, Any]:
    """The letter as `pouch open --json` shows it (the text summary too);
    me: your name, if you sent it."""
    from ..identity import fingerprint

    opened, saved = received.opened, received.saved
    h = opened.header
    return {
        "from": {
            "name": me if me is not None else sender.name if sender else None,
            "fingerprint": opened.sender_fingerprint,
            "contact": sender is not None,
            "verified": bool(sender and sender.verified),
            "you": me is not None,
        },
        "to": [{"name": names.get(k), "fingerprint": fingerprint(k)} for k in h.recipients],
        "date": h.date,
        "subject": h.subject,
        "in_reply_to": h.in_reply_to,
        "letter_id": opened.letter_id,
        "envelope_id": opened.envelope_id,
        "encryption": "post-quantum" if opened.post_quantum else "classic",
        "body": None,
        "attachments": [
            {"name": p.name, "size": p.size, "hash": p.hash, "saved": saved.get(i)}
            for i, p in enumerate(opened.manifest.parts)
            if i > 0
        ],
        "body_saved": saved.get(0),
        "padding": opened.manifest.padding,
        "decoys": h.decoys,
        "trailer_torn": opened.torn_trailer,
    }


def _custody(report: CustodyReport, names: dict[bytes, str]) -> dict[str, Any]:
    """The custody chain as the summary shows it, holders by name."""
    from ..identity import fingerprint

    def who(key: bytes) -> str:
        return names.get(key, fingerprint(key)[:16])

    links = [
        {
            "seq": link.seq,
            "from": who(link.giver),
            "to": who(link.taker),
            "time": link.time,
            "place": link.place,
            "accepted": link.accepted,
            "accredited": link.accredited,
        }
        for link in report.links
    ]
    return {
        "links": links,
        "problems": list(report.problems),
        "verified": report.verified,
        "head": report.head,
    }


def _print_summary(s: dict[str, Any], sender: Contact | None) -> None:
    from ..container import short_id

    def err(line: str) -> None:
        click.echo(shown(line), err=True)

    fp = s["from"]["fingerprint"]
    if s["from"]["you"]:
        who = f"{s['from']['name']} (you)  {fp[:16]}"
    elif sender is None:
        err("WARNING: the sender is not one of your contacts. Anyone can make a key;")
        err(f"WARNING: only a card you checked in person tells you who {fp[:16]} is.")
        who = f"unknown sender  {fp}"
    else:
        state = "verified" if sender.verified else "NOT verified"
        who = f"{sender.name}  {fp[:16]}  ({state})"
        if not sender.verified:
            err(f"warning: {sender.name} was never verified: compare safety numbers")
    err(f"From:        {who}")
    err("To:          " + ", ".join(t["name"] or t["fingerprint"][:16] for t in s["to"]))
    err(f"Date:        {s['date']}")
    err(f"Subject:     {s['subject']}")
    if s["in_reply_to"]:
        err(f"In reply to: {s['in_reply_to']}")
    err(f"Letter:      {s['letter_id']}")
    err(f"Envelope:    {short_id(s['envelope_id'])}  {s['envelope_id']}")
    err(f"Sealed:      {s['encryption']}; every segment signature verified")
    if s["body_saved"]:
        err(f"Body:        {s['body_saved']}")
    for a in s["attachments"]:
        where = a["saved"] or "not saved (use -o DIR)"
        err(f"Attachment:  {a['name']}  {a['size']:,} bytes  -> {where}")
    if s["trailer_torn"]:
        err("note: the container's last trailer record was torn (an interrupted append)")
    custody = s["custody"]
    for link in custody["links"]:
        at = f" at {link['place']}" if link["place"] else ""
        accepted = f", accepted {link['accepted']}" if link["accepted"] else ", NOT accepted"
        err(
            f"Custody {link['seq']}:   {link['time']}  {link['from']} -> {link['to']}{at}{accepted}"
        )
        if link["accredited"]:
            err(f"             taker: {link['accredited']}")
    order = s["order"]
    if order["seq"] is not None:
        err(f"Order:       #{order['seq']} of stream {order['stream'][:8]}: {order['arrival']}")
    for note in order["notes"]:
        err(f"ORDER WARNING: {note}" if order["arrival"] != "replay" else f"note: replay, {note}")
    if custody["links"]:
        for problem in custody["problems"]:
            err(f"CUSTODY WARNING: {problem}")
        if custody["verified"]:
            err("Custody:     verified (not revoked as far as your register knows)")


@cli.command("inspect")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--extract-age", metavar="OUT", help="Write the bare age ciphertext to OUT.")
def inspect_command(file: str, as_json: bool, extract_age: str | None) -> None:
    """Show what a carrier sees of FILE, without any key. Never decrypts."""
    from .. import container
    from .._io import atomic_output
    from ..letter import inspect

    with container.load(file) as c:
        info = inspect(c)
        if extract_age is not None:
            with atomic_output(extract_age, replace=False) as f:
                shutil.copyfileobj(c.age_stream(), f, 1 << 20)
    types = sorted(set(info.stanza_types))
    out: dict[str, Any] = {
        "envelope_id": info.envelope_id,
        "size": info.size,
        "format": "age (bare)" if info.bare else f"pouch container v{info.version}",
        "stanzas": info.stanzas,
        "stanza_types": types,
        "records": [{"type": r.type, "size": r.length} for r in info.records],
        "trailer_torn": info.torn_trailer,
    }
    if as_json:
        echo_json(out, indent=2)
        return
    click.echo(f"Envelope:  {container.short_id(info.envelope_id)}  {info.envelope_id}")
    click.echo(f"Format:    {out['format']}, {info.size:,} bytes")
    click.echo(f"Stanzas:   {info.stanzas} ({', '.join(types)})")
    click.echo(
        f"Trailer:   {len(info.records)} record(s)"
        + (", last one torn" if info.torn_trailer else "")
    )
    if extract_age is not None:
        click.echo(f"Extracted: {extract_age}")


@cli.command("receipt")
@click.argument("file")
@click.option("--letter", "letter_id", metavar="LETTER_ID", help="The letter it must be for.")
@click.option("--envelope", metavar="ENVELOPE_ID", help="The pouch it must be for.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@passphrase_file_option
@home_option
def receipt_command(
    file: str,
    letter_id: str | None,
    envelope: str | None,
    as_json: bool,
    passphrase_file: str | None,
    home: str | None,
) -> None:
    """Open a delivery receipt for a letter you sent: which letter, received
    by whom, when, via which chain.

    FILE is a receipt letter (from 'pouch open --receipt'), or a custody
    receipt (from 'pouch accept --receipt', by a receiver who does not open
    the letter), which names the pouch but not the letter.
    """
    from .. import container

    with container.load(file) as c:
        if c.detached is not None:
            from ._custody import show_custody_receipt

            if letter_id is not None:
                raise UsageError(
                    "a custody receipt names the pouch, not the letter",
                    "give --envelope ENVELOPE_ID instead of --letter",
                )
            show_custody_receipt(_home(home), c, envelope, as_json)
            return
        checked = _post(home, passphrase_file).check_receipt(c, letter_id, envelope)
    r, signer = checked.receipt, checked.signer
    names = {c.fingerprint: c.name for c in _home(home).contacts()}
    if as_json:
        echo_json({**r.as_json(), "signer_name": names.get(signer)}, indent=2)
        return
    who = names.get(r.recipient, r.recipient[:16])
    click.echo(f"Receipt for letter {r.letter}")
    if r.signer != r.recipient:
        who += f", signed by their receiver {names.get(signer, signer[:16])}"
    click.echo(f"  received by  {who}")
    click.echo(f"  at           {r.time}")
    click.echo(f"  envelope     {r.envelope}")
    click.echo(f"  sequence     {r.seq} (last received from you: {r.last_received})")
    click.echo(f"  custody      head {r.custody_head or 'none'}")
    for problem in r.custody:
        click.echo(f"  custody note {problem}")
    click.echo("  verdict      every segment and the manifest verified" if r.complete else
               "  verdict      INCOMPLETE")  # fmt: skip
