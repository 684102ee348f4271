"""pouch seal, pouch open, pouch inspect: sealed letters."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from .._io import StagedFile, atomic_output, crash_point, publish, publish_all
from ..errors import FileError, RefusedError, UsageError
from . import _home, _stdio, _unlock, cli, home_option, passphrase_file_option, shown

if TYPE_CHECKING:
    from ..home import Home
    from ..identity import Card, Identity
    from ..ledger import Arrival
    from ..letters import Opened
    from ..register import Contact

# Without -o DIR and without --stream, the body is held in memory until the
# whole letter verified; past this size, the user must choose one of them.
MAX_HELD_BODY = 16 << 20


@cli.command("seal")
@click.option(
    "-t",
    "--to",
    "to",
    multiple=True,
    required=True,
    metavar="NAME",
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
    kem: str | None,
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
    from .. import letters
    from ..container import short_id

    h = _home(home)
    h.card()
    if reply_to is not None and not _is_letter_id(reply_to):
        raise UsageError("--reply-to takes a full letter id (64 hex digits)")
    with h.register() as reg:
        contacts = [reg.find(name) for name in to]
    _check_verified(contacts, allow_unverified)
    identity = _unlock(h, passphrase_file)
    now = datetime.now(UTC)
    out = _stdio(output) if output is not None else _default_name(now, armor)
    if out is None and not armor and sys.stdout.isatty():
        raise RefusedError(
            "refusing to write a binary container to the terminal", "use --armor, or -o FILE"
        )
    # The same command run again after a crash completes the letter it
    # committed, rather than sealing a second one.
    job = _job(contacts, subject, reply_to, out, armor, pad, kem, body, attachments)
    sources = [_open(a) for a in attachments]
    names = [Path(a).name for a in attachments]
    body_src = sys.stdin.buffer if body in (None, "-") else _open(body)
    try:
        sealed, completed = _seal_recorded(
            h, identity, [c.card for c in contacts], body_src,
            list(zip(names, sources, strict=True)), out=out, armor=armor, job=job,
            subject=subject, in_reply_to=reply_to, kem=kem, pad=pad, now=now,
        )  # fmt: skip
    finally:
        for src in sources:
            src.close()
        if body_src is not sys.stdin.buffer:
            body_src.close()
    where = "standard output" if out is None else out
    if completed:
        click.echo(f"Already sealed by this command ({sealed.date}); written out", err=True)
        click.echo(f"  letter    {sealed.letter_id}", err=True)
        click.echo(f"  envelope  {short_id(sealed.envelope_id)}  {sealed.envelope_id}", err=True)
        click.echo(f"  written   -> {where}", err=True)
        return
    kind = "post-quantum" if sealed.kem == letters.PQ else "classic (X25519)"
    click.echo(f"Sealed to {', '.join(c.name for c in contacts)}  ({sealed.date})", err=True)
    click.echo(f"  letter    {sealed.letter_id}", err=True)
    click.echo(f"  envelope  {short_id(sealed.envelope_id)}  {sealed.envelope_id}", err=True)
    click.echo(f"  sealed    {kind}, {sealed.size:,} bytes -> {where}", err=True)
    if sealed.kem != letters.PQ and kem != "classic":
        missing = ", ".join(c.name for c in contacts if c.card.pq is None)
        click.echo(f"warning: sealed classic: {missing} has no post-quantum key", err=True)


def _job(
    contacts: list[Contact],
    subject: str,
    reply_to: str | None,
    out: str | None,
    armor: bool,
    pad: bool,
    kem: str | None,
    body: str | None,
    attachments: tuple[str, ...],
) -> str | None:
    """What makes a run of 'pouch seal' the same command as an earlier one:
    its recipients, options, output and inputs (each file's path, size and
    time of change). None when there is nothing to compare: a body or an
    output that is a stream."""
    import blake3

    from .._canonical import dumps

    if out is None or body in (None, "-"):
        return None
    files = []
    for path in (body, *attachments):
        assert path is not None
        try:
            st = os.stat(path)
        except OSError:
            return None
        files.append([os.path.realpath(path), str(st.st_size), str(st.st_mtime_ns)])
    command = {
        "to": sorted(c.fingerprint for c in contacts),
        "subject": subject,
        "reply_to": reply_to,
        "out": os.path.realpath(out),
        "options": [armor, pad, kem],
        "files": files,
    }
    return blake3.blake3(b"pouch/seal/job/v1\x00" + dumps(command)).hexdigest()


@dataclass(frozen=True)
class _Result:
    letter_id: str
    envelope_id: str
    kem: str
    size: int
    date: str


def _seal_recorded(
    h: Home,
    identity: Identity,
    cards: list[Card],
    body: BinaryIO,
    attachments: list[tuple[str, BinaryIO]],
    *,
    out: str | None,
    armor: bool,
    job: str | None,
    now: datetime,
    kind: str = "letter",
    **options: Any,
) -> tuple[_Result, bool]:
    """Seal a letter and record it, in the crash order of SPEC.md 5.3:
    reserve the numbers durably, seal into a staged file, keep it in the
    archive, commit the letter id, and only then name the output. A crash
    at any point leaves either no letter (its numbers are given out again)
    or a committed one that the same command, run again, writes out
    (returns True then)."""
    from .. import ledger, letters
    from .._io import StagedFile
    from ..identity import rfc3339
    from ..order import Block
    from ..register import LetterRow, Position

    # One seal at a time in a home: a number reserved and not taken is then
    # one a run left when it died, safe to give out again.
    with _seal_lock(h):
        with h.register() as reg:
            earlier = reg.sealed_by(job) if job is not None else None
            if earlier is not None:
                # This command ran before: write out what it committed (if it
                # died before it could), never a second letter.
                _write_out(h.archive(earlier.envelope), out, armor, completing=True)
                reg.published(earlier.id)
                return _Result(earlier.id, earlier.envelope, "", 0, earlier.date), True
            if out is not None and os.path.lexists(out):
                # Refused before a number is reserved: a letter committed and
                # then not written out would be a gap its recipient never fills.
                raise RefusedError(f"{out} already exists", "pouch does not overwrite it")
            stream = reg.stream_id(letters.new_stream_id)
            me = identity.fingerprint
            order: dict[str, Block] = ledger.blocks_for(
                reg, me, [c.fingerprint for c in cards], stream
            )
        crash_point("seal:reserved")
        direct = out is not None and not armor
        folder = Path(os.path.realpath(out)).parent if direct and out is not None else None
        try:
            staged = StagedFile(folder or h.archive())
        except OSError as e:
            raise FileError(f"cannot write in {folder or h.archive_path}: {e.strerror}") from None
        try:
            sealed = letters.seal(identity, cards, body, staged.file, attachments=attachments,
                                  stream=stream, order=order, now=now, kind=kind,
                                  **options)  # fmt: skip
            kept = h.archive(sealed.envelope_id)
            try:
                staged.keep(kept)
            except OSError as e:
                raise FileError(f"cannot keep the letter in {kept}: {e.strerror}") from None
            crash_point("seal:kept")
            private = {"subject": options.get("subject", ""),
                       "parts": [name for name, _ in attachments]}  # fmt: skip
            hidden = ledger.seal_private(identity, sealed.letter_id, private, os.urandom)
            row = LetterRow(
                sealed.letter_id, sealed.envelope_id, "sent", kind, me,
                tuple(c.fingerprint for c in cards), rfc3339(now), options.get("in_reply_to"),
                stream, "sealed", hidden, rfc3339(datetime.now(UTC)),
            )  # fmt: skip
            positions = []
            for fp, b in order.items():
                key = sealed.block_keys[fp]
                p = Position(
                    sealed.letter_id, me, fp, stream, b.seq, b.prev, b.ack, b.continues, key
                )
                positions.append(p)
            with h.register() as reg:
                reg.record_sent(row, positions, out if out is None else os.path.realpath(out), job)
            crash_point("seal:committed")
            if direct and out is not None:
                publish(staged, Path(os.path.realpath(out)))
            else:
                _write_out(kept, out, armor)
            crash_point("seal:named")
            with h.register() as reg:
                reg.published(sealed.letter_id)
        finally:
            staged.close()
        return _Result(
            sealed.letter_id, sealed.envelope_id, sealed.kem, sealed.size, row.date
        ), False


def _seal_lock(h: Home) -> BinaryIO:
    """The home's seal lock, held (flock) until the file is closed; the
    kernel drops it when the process dies, however it dies."""
    import fcntl

    try:
        fd = os.open(h.path / "seal.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise FileError(f"cannot lock {h.path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        click.echo("waiting for another 'pouch seal' in this home to finish...", err=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return os.fdopen(fd, "rb")


def _write_out(kept: Path, out: str | None, armor: bool, completing: bool = False) -> None:
    """The archived container, to out: armored, to stdout, or (completing
    an interrupted run) as a file; completing, a file already there from
    that run is left as it is."""
    from ..age.armor import ArmoredWriter
    from ..container import ARMOR_LABEL

    if completing and out is not None and os.path.exists(out):
        return  # written by the run that was interrupted before it said so
    with open(kept, "rb") as src, contextlib.ExitStack() as stack:
        if out is None:
            dst: BinaryIO = sys.stdout.buffer
        else:
            dst = stack.enter_context(atomic_output(out, replace=False))
        if armor:
            with ArmoredWriter(dst, ARMOR_LABEL) as a:
                while chunk := src.read(1 << 20):
                    a.write(chunk)
        else:
            shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()


def _is_letter_id(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def _check_verified(contacts: list[Contact], allow_unverified: bool) -> None:
    unverified = [c for c in contacts if not c.verified]
    if unverified and not allow_unverified:
        raise RefusedError(
            f"{', '.join(c.name for c in unverified)}: never verified",
            "compare safety numbers ('pouch fingerprint NAME'), then 'pouch contacts verify NAME'",
            "or seal anyway with --allow-unverified",
        )


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise FileError(f"cannot read {path}: {e.strerror}") from None


def _default_name(now: Any, armor: bool) -> str:
    return f"letter-{now.strftime('%Y%m%dT%H%M%SZ')}.pouch" + (".txt" if armor else "")


@dataclass
class _Outputs:
    """Where the parts of an opened letter go."""

    directory: Path | None
    stream_body: bool
    held: io.BytesIO | None = None
    staged: dict[int, StagedFile] = field(default_factory=dict)

    def sink(self, part: int) -> BinaryIO | None:
        if self.directory is not None:
            try:
                staged = StagedFile(self.directory)
            except OSError as e:
                raise FileError(f"cannot write in {self.directory}: {e.strerror}") from None
            self.staged[part] = staged
            return staged.file
        if part != 0:
            return None  # verified, not kept: attachments need -o DIR
        if self.stream_body:
            return sys.stdout.buffer
        self.held = _Bounded()
        return self.held

    def close(self) -> None:
        for staged in self.staged.values():
            staged.close()


class _Bounded(io.BytesIO):
    def write(self, data: Any) -> int:
        if self.tell() + len(data) > MAX_HELD_BODY:
            raise UsageError(
                "the body is too large to hold until it is verified",
                "write it to a folder with -o DIR, or release it as it verifies with --stream",
            )
        return super().write(data)


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
    from .. import letters

    if stream and (directory or as_json):
        raise UsageError("--stream writes the body to stdout: it can't be used with -o or --json")
    _raise_file_limit()
    h = _home(home)
    identity = _unlock(h, passphrase_file)
    target = Path(directory) if directory else None
    if target is not None and not target.is_dir():
        raise FileError(f"{directory} is not a folder")
    outputs = _Outputs(target, stream)
    try:
        # Several cores only into DIR: stdout and the body held in memory are
        # written as a stream.
        jobs = None if target is not None else 1
        opened = letters.open_letter(identity, file, outputs.sink, jobs=jobs)
        custody = _custody(file, opened, identity, h)
        if require_accredited and custody["problems"]:
            from ..errors import CustodyError

            raise CustodyError(
                "refused: its custody does not verify (--require-accredited)",
                *custody["problems"][:5],
            )
        # Recorded before anything is named: a crash leaves a letter either
        # recorded (a re-run completes it) or not at all.
        arrival = _record_arrival(h, identity, file, opened)
        crash_point("open:recorded")
        # Parts already there, byte for byte (a run that died, or a replay): named.
        saved = _publish(
            opened, outputs, force, completing=arrival.kind in ("completion", "replay")
        )
        crash_point("open:named")
        if arrival.kind not in ("replay", "own"):
            with h.register() as reg:
                reg.published(opened.letter_id)
    finally:
        outputs.close()
    if receipt is not None:
        # Only now: the final segment verified and the parts are published.
        _send_receipt(h, identity, opened, custody, receipt)
    with h.register() as reg:
        contacts = reg.contacts()
    sender = next((c for c in contacts if c.fingerprint == opened.sender_fingerprint), None)
    names = {c.card.signing_key: c.name for c in contacts}
    names[identity.signing_key] = f"{identity.name} (you)"
    summary = _summary(opened, sender, names, saved)
    summary["custody"] = custody
    summary["order"] = {
        "arrival": arrival.kind,
        "stream": opened.header.stream,
        "seq": opened.order.seq if opened.order else None,
        "missing": arrival.missing,
        "notes": arrival.notes,
    }
    if as_json:
        if outputs.held is not None:
            body = outputs.held.getvalue()
            try:
                summary["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                summary["body_base64"] = base64.b64encode(body).decode()
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        # The body first: whatever it holds, the summary is printed after it
        # and cannot be overwritten by it.
        if outputs.held is not None:
            _write_body(outputs.held.getvalue())
        _print_summary(summary, sender)


def _record_arrival(h: Home, identity: Identity, file: str, opened: Opened) -> Arrival:
    """Place the letter in the ledger and keep its container; a fork is
    recorded (both letters kept, as evidence), then refused."""
    from .. import ledger
    from ..errors import ForkError
    from ..identity import fingerprint, rfc3339
    from ..register import LetterRow

    me = identity.fingerprint
    header = opened.header
    with h.register() as reg:
        names = {c.fingerprint: c.name for c in reg.contacts()}

        def name(fp: str) -> str:
            return names.get(fp, fp[:16])

        arrival = ledger.classify(reg, me, opened.letter_id, opened.sender_fingerprint,
                                  header.stream, opened.order, name)  # fmt: skip
        if arrival.kind == "fork" and arrival.position is None:
            raise ForkError(*arrival.notes, "nothing was written")
        if arrival.kind in ("replay", "completion", "own"):
            return arrival
        _keep_container(file, h.archive(opened.envelope_id))
        private = {"subject": header.subject,
                   "parts": [p.name for p in opened.manifest.parts[1:]]}  # fmt: skip
        row = LetterRow(
            opened.letter_id, opened.envelope_id, "received", header.kind,
            opened.sender_fingerprint, tuple(fingerprint(r) for r in header.recipients),
            header.date, header.in_reply_to, header.stream,
            "forked" if arrival.kind == "fork" else "received",
            ledger.seal_private(identity, opened.letter_id, private, os.urandom),
            rfc3339(datetime.now(UTC)),
        )  # fmt: skip
        position = arrival.position
        if position is not None:
            position = dataclasses.replace(position, block_key=opened.order_key)
        reg.record_received(row, position, arrival.forks, rfc3339(datetime.now(UTC)))
    if arrival.kind == "fork":
        raise ForkError(
            *arrival.notes,
            "both letters are kept in your register: 'pouch letters "
            f"{name(opened.sender_fingerprint)}' lists them; nothing was written",
        )
    return arrival


def _keep_container(file: str, kept: Path) -> None:
    """A copy of the container in the archive: a hard link where it can be."""
    from .._io import copy_durably, fsync_directory

    if kept.exists():
        return
    try:
        os.link(file, kept)
    except OSError:
        try:
            with open(file, "rb") as src:
                copy_durably(src, kept)
        except FileExistsError:
            return
        except OSError as e:
            raise FileError(f"cannot keep the letter in {kept}: {e.strerror}") from None
    fsync_directory(kept.parent)


def _custody(file: str, opened: Opened, identity: Identity, h: Home) -> dict[str, Any]:
    """The custody chain's report, for the summary: every link, and every
    problem (the chain's shape, accreditation, and what only the recipient
    can check). A custody problem never hides or alters the letter."""
    from .. import container

    c = container.load(file)
    with c.src:
        if not c.records:  # delivered without custody: nothing to judge
            return {"links": [], "problems": ["no custody: nobody signed for this pouch"],
                    "verified": False, "head": None}  # fmt: skip
        from ..custody import judge, read_trailer, recipient_flags
        from ..identity import fingerprint

        trailer = read_trailer(c)
    with h.register() as reg:
        names = {x.card.signing_key: x.name for x in reg.contacts()}
        names[identity.signing_key] = "you"
        kept = reg.credentials()
        credentials = [x for x, _ in kept]
        scopes = {x.id: scope for x, scope in kept if scope is not None}
        verdict = judge(opened.envelope_id, trailer, set(names), credentials, reg.revocation)
        problems = [*verdict.problems, *verdict.flags]
        if verdict.chain.links:
            problems += recipient_flags(
                verdict,
                trailer,
                opened.header.sender,
                identity.signing_key,
                credentials,
                scopes,
                reg.revocation,
            )
        if trailer.envelope not in (None, opened.envelope_id):
            problems.insert(0, "the handovers name another envelope than this one")

    def who(key: bytes) -> str:
        return names.get(key, fingerprint(key)[:16])

    links = [
        {
            "seq": link.handover.seq,
            "from": who(link.handover.giver),
            "to": who(link.handover.taker),
            "time": link.handover.time,
            "place": link.handover.place,
            "accepted": link.acceptance.time if link.acceptance else None,
            "accredited": verdict.accredited.get(link.handover.seq),
        }
        for link in verdict.chain.links
    ]
    head = verdict.chain.head
    return {"links": links, "problems": problems, "verified": not problems, "head": head}


def _send_receipt(
    h: Home, identity: Identity, opened: Opened, custody: dict[str, Any], out: str
) -> None:
    """Seal a receipt for opened back to its sender (SPEC.md 2.6)."""
    from .. import ledger
    from ..container import short_id
    from ..identity import rfc3339
    from ..receipts import Receipt

    with h.register() as reg:
        known = [c for c in reg.contacts() if c.fingerprint == opened.sender_fingerprint]
        if not known:
            raise UsageError(
                "the sender is not one of your contacts: a receipt is sealed to their card",
                "add it with 'pouch contacts add', then open the letter again with --receipt",
            )
        sender = known[0]
        accepted = reg.custody_head(opened.envelope_id)
        # The letter was recorded before this: it counts as received.
        last = ledger.acknowledgment(reg, identity.fingerprint, sender.fingerprint)
    now = datetime.now(UTC)
    body = Receipt(
        letter=opened.letter_id,
        envelope=opened.envelope_id,
        sender=opened.sender_fingerprint,
        seq=opened.order.seq if opened.order else 0,
        recipient=identity.fingerprint,
        signer=identity.fingerprint,
        credential=None,
        custody_head=accepted[0] if accepted else custody["head"],
        time=rfc3339(now),
        complete=True,
        custody=tuple(custody["problems"]) if custody["links"] else (),
        last_received=last.seq if last else 0,
    )
    import blake3

    # The receipt for this letter into this file, once: a run that died after
    # committing it writes that one out when run again.
    job = blake3.blake3(b"pouch/receipt/job/v1\x00" + bytes.fromhex(opened.letter_id)
                        + os.path.realpath(out).encode()).hexdigest()  # fmt: skip
    sealed, _ = _seal_recorded(h, identity, [sender.card], io.BytesIO(body.encode()), [],
                               out=out, armor=False, job=job, now=now, kind="receipt",
                               subject="Receipt", in_reply_to=opened.letter_id)  # fmt: skip
    click.echo(
        f"Receipt:     sealed to {sender.name} -> {out}  (envelope {short_id(sealed.envelope_id)})",
        err=True,
    )


def _raise_file_limit() -> None:
    """Each part of a letter is a staged file, open until the letter
    verified; a letter may have up to 1,000 of them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _same(path: Path, staged: BinaryIO) -> bool:
    """Whether the file at path holds exactly what staged does."""
    staged.flush()
    staged.seek(0)
    with open(path, "rb") as f:
        while True:
            a, b = f.read(1 << 20), staged.read(1 << 20)
            if a != b:
                return False
            if not a:
                return True


def _publish(
    opened: Opened, outputs: _Outputs, force: bool, completing: bool = False
) -> dict[int, str]:
    """Name the staged parts, all or none; returns part -> path. Completing
    a run that died while naming them, a part already there with the same
    bytes counts as named."""
    from ..letters import sanitize_name

    if outputs.directory is None:
        return {}
    names: dict[int, Path] = {}
    taken: set[str] = set()
    for i, part in enumerate(opened.manifest.parts):
        if i not in outputs.staged:
            outputs.staged[i] = StagedFile(outputs.directory)  # an empty part
        base = (
            f"letter-{opened.letter_id[:12]}.txt" if i == 0 else sanitize_name(part.name or "", i)
        )
        name, n = base, 1
        while name in taken:
            n += 1
            stem, dot, ext = base.partition(".")
            name = f"{stem}-{n}{dot}{ext}"
        taken.add(name)
        names[i] = outputs.directory / name
    # Every check before anything is named: all the parts appear, or none.
    existing: list[str] = []
    named_before: set[int] = set()
    for index, path in names.items():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise FileError(f"cannot write {path}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise RefusedError(f"{path} exists and is not a file: nothing was written")
        if completing and _same(path, outputs.staged[index].file):
            named_before.add(index)
            continue
        existing.append(str(path))
    if existing and not force:
        raise RefusedError(
            f"{', '.join(existing)} already exist(s): nothing was written",
            "choose another folder, or overwrite with --force",
        )
    publish_all(
        [(outputs.staged[i], path) for i, path in names.items() if i not in named_before],
        replace=force,
    )
    return {i: str(p) for i, p in names.items()}


def _summary(
    opened: Opened, sender: Contact | None, names: dict[bytes, str], saved: dict[int, str]
) -> dict[str, Any]:
    from ..identity import fingerprint

    h = opened.header
    return {
        "from": {
            "name": sender.name if sender else None,
            "fingerprint": opened.sender_fingerprint,
            "contact": sender is not None,
            "verified": bool(sender and sender.verified),
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


_CONTROL = {*range(0, 9), 11, 12, *range(14, 32), 127, *range(0x80, 0xA0)}


def _write_body(body: bytes) -> None:
    out = sys.stdout.buffer
    if sys.stdout.isatty():
        text = body.decode("utf-8", "replace")
        if any(ord(ch) in _CONTROL for ch in text):
            click.echo(
                "warning: the body holds control characters; they are shown escaped "
                "(use -o DIR for the exact bytes)",
                err=True,
            )
            body = "".join(ascii(ch)[1:-1] if ord(ch) in _CONTROL else ch for ch in text).encode(
                "utf-8"
            )
    out.write(body)
    out.flush()


def _print_summary(s: dict[str, Any], sender: Contact | None) -> None:
    from ..container import short_id

    def err(line: str) -> None:
        click.echo(shown(line), err=True)

    fp = s["from"]["fingerprint"]
    if sender is None:
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
    from .. import container, letters
    from ..container import short_id

    info = letters.inspect(file)
    if extract_age is not None:
        c = container.load(file)
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
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"Envelope:  {short_id(info.envelope_id)}  {info.envelope_id}")
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
    from .. import container, letters
    from ..errors import LetterError
    from ..receipts import Receipt

    h = _home(home)
    c = container.load(file)
    if c.detached is not None:
        from ._custody import custody_receipt

        if letter_id is not None:
            raise UsageError(
                "a custody receipt names the pouch, not the letter",
                "give --envelope ENVELOPE_ID instead of --letter",
            )
        custody_receipt(h, c, envelope, as_json)
        return
    c.src.close()
    identity = _unlock(h, passphrase_file)
    held = io.BytesIO()
    opened = letters.open_letter(identity, file, lambda part: held if part == 0 else None, jobs=1)
    if opened.header.kind != "receipt":
        raise UsageError("this is a letter, not a receipt: 'pouch open' opens it")
    r = Receipt.decode(held.getvalue())
    signer = opened.sender_fingerprint
    if r.letter != opened.header.in_reply_to:
        raise LetterError("the receipt names another letter than the one it answers")
    if r.signer != signer:
        raise LetterError("the receipt names another signer than the one who signed it")
    if r.sender != identity.fingerprint:
        raise LetterError("this receipt is for a letter someone else sent")
    if letter_id is not None and r.letter != letter_id.lower():
        raise LetterError(f"a receipt for another letter: {r.letter[:16]}, not {letter_id[:16]}")
    if envelope is not None and r.envelope != envelope.lower():
        raise LetterError(f"a receipt for another pouch: {r.envelope[:16]}, not {envelope[:16]}")
    with h.register() as reg:
        names = {c.fingerprint: c.name for c in reg.contacts()}
        by_receiver = any(
            c.principal_fingerprint == r.recipient
            and c.agent_fingerprint == signer
            and c.role == "receiver"
            and c.covers(r.time)
            and reg.revocation(c) is None
            for c, _ in reg.credentials()
        )
        # What this register sent: the receipt must match the letter's
        # envelope and one of its recipients.
        sent = reg.letter(r.letter)
    if r.recipient != signer and not by_receiver:
        raise LetterError(
            "the receipt is signed by someone who is neither the recipient nor their "
            "accredited receiver, as far as your register knows"
        )
    if sent is None or sent.direction != "sent":
        raise LetterError("the receipt is for a letter this register has no record of sending")
    if sent.envelope != r.envelope or r.recipient not in sent.recipients:
        raise LetterError(
            "the receipt does not match the letter you sent: another envelope, or someone "
            "it was not addressed to"
        )
    # The receipt is a letter from them, with its place in their stream.
    _record_arrival(h, identity, file, opened)
    with h.register() as reg:
        reg.published(opened.letter_id)
        reg.add_receipt(r.letter, opened.letter_id, "letter", signer, r.time)
    if as_json:
        click.echo(json.dumps({**r.as_json(), "signer_name": names.get(signer)}, indent=2))
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
