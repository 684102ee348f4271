"""Sending: a letter, or a receipt, sealed and recorded in the crash order
of SPEC.md 5.3: reserve the numbers durably, seal into a staged file, keep
it in the archive, commit the letter id, and only then name the output.

A crash at any point leaves either no letter (its numbers are given out
again) or a committed one that the same command, run again, writes out:
never a second letter at the same numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import blake3

from .. import _canonical
from .._fields import is_hex64, rfc3339
from .._io import (
    StagedFile,
    atomic_output,
    crash_point,
    fsync_directory,
    publish,
    room_hint,
    writing,
)
from ..age.armor import ArmoredWriter
from ..container import ARMOR_LABEL
from ..errors import FileError, RefusedError, UsageError
from ..identity import Identity
from ..letter import Kem, KemChoice, LetterKind, new_stream_id, seal
from ..letter.order import Position
from ..letter.receipts import Receipt
from . import ledger
from ._ledger_store import LetterRow
from .folder import Home, archived_intact
from .register import Contact

if TYPE_CHECKING:
    from ._receiving import Received
    from .post import Post

JOB_LABEL = b"pouch/seal/job/v1\x00"
RECEIPT_JOB_LABEL = b"pouch/receipt/job/v1\x00"

# Where a sealed letter goes: a file (named only once it is committed), or
# a stream (stdout), written from the archive once it is committed.
Output = str | os.PathLike[str] | BinaryIO
# What a letter's body and attachments come from: a file, or a stream (an
# attachment from a stream is given with its name).
Input = str | os.PathLike[str] | BinaryIO
Attachment = str | os.PathLike[str] | tuple[str, BinaryIO]


class Sent(NamedTuple):
    """A letter sealed and recorded, and written out."""

    to: tuple[Contact, ...]
    letter_id: str
    envelope_id: str
    kem: Kem | None  # None when an earlier run sealed it (completed)
    size: int  # the container's; 0 when completed
    date: str
    completed: bool  # an earlier run of the same command sealed it: written out now


def send(
    post: Post,
    to: Sequence[Contact | str],
    body: Input,
    output: Output,
    *,
    attachments: Sequence[Attachment] = (),
    subject: str = "",
    in_reply_to: str | None = None,
    kem: KemChoice | None = None,
    pad: bool = False,
    armor: bool = False,
    allow_unverified: bool = False,
    now: datetime | None = None,
) -> Sent:
    if in_reply_to is not None:
        in_reply_to = _answered(post, in_reply_to)
    contacts = [c if isinstance(c, Contact) else post.home.find(c) for c in to]
    _check_verified(contacts, allow_unverified)
    identity = post.identity
    now = now or datetime.now(UTC)
    inputs = [body, *(a[1] if isinstance(a, tuple) else a for a in attachments)]
    job = job_of([c.fingerprint for c in contacts], subject, in_reply_to, output, armor, pad,
                 kem, inputs)  # fmt: skip
    with contextlib.ExitStack() as files:
        parts = [
            a if isinstance(a, tuple) else (Path(a).name, files.enter_context(_read(a)))
            for a in attachments
        ]
        if isinstance(body, (str, os.PathLike)):
            body = files.enter_context(_read(body))
        return seal_recorded(
            post.home, identity, contacts, body, parts, out=output,
            armor=armor, job=job, now=now, on_wait=post.on_wait, subject=subject,
            in_reply_to=in_reply_to, kem=kem, pad=pad,
        )  # fmt: skip


def _answered(post: Post, query: str) -> str:
    """The id of the letter query names: a letter in the register (by a
    prefix of its id or envelope id), or any full letter id."""
    with post.home.register() as reg:
        if is_hex64(query.lower()) and reg.letter(query.lower()) is not None:
            return query.lower()
        try:
            return reg.find_letter(query).id
        except UsageError:
            if is_hex64(query.lower()):
                return query.lower()  # a letter this register never saw
            raise


def send_receipt(post: Post, received: Received, output: str | os.PathLike[str]) -> Sent:
    opened = received.opened
    with post.home.register() as reg:
        known = [c for c in reg.contacts() if c.fingerprint == opened.sender_fingerprint]
        if not known:
            raise UsageError(
                "the sender is not one of your contacts: a receipt is sealed to their card",
                "add it with 'pouch contacts add', then open the letter again with --receipt",
            )
        sender = known[0]
        accepted = reg.custody_head(opened.envelope_id)
        # The letter was recorded before this: it counts as received.
        last = ledger.acknowledgment(reg, post.me, sender.fingerprint)
    now = datetime.now(UTC)
    custody = received.custody
    body = Receipt(
        letter=opened.letter_id,
        envelope=opened.envelope_id,
        sender=opened.sender_fingerprint,
        seq=opened.order.seq if opened.order else 0,
        recipient=post.me,
        signer=post.me,
        credential=None,
        custody_head=accepted[0] if accepted else custody.head,
        time=rfc3339(now),
        complete=True,
        custody=custody.problems if custody.links else (),
        last_received=last.seq if last else 0,
    )
    job = blake3.blake3(RECEIPT_JOB_LABEL + bytes.fromhex(opened.letter_id)
                        + os.path.realpath(output).encode()).hexdigest()  # fmt: skip
    return seal_recorded(post.home, post.identity, [sender], io.BytesIO(body.encode()), [],
                         out=output, armor=False, job=job, now=now, on_wait=post.on_wait,
                         kind="receipt", subject="Receipt",
                         in_reply_to=opened.letter_id)  # fmt: skip


def _check_verified(contacts: Sequence[Contact], allow_unverified: bool) -> None:
    unverified = [c for c in contacts if not c.verified]
    if unverified and not allow_unverified:
        raise RefusedError(
            f"{', '.join(c.name for c in unverified)}: never verified",
            "compare safety numbers ('pouch fingerprint NAME'), then 'pouch contacts verify NAME'",
            "or seal anyway with --allow-unverified",
        )


def _read(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise FileError(f"cannot read {path}: {e.strerror}") from None


def job_of(
    to: Sequence[str],
    subject: str,
    in_reply_to: str | None,
    out: Output,
    armor: bool,
    pad: bool,
    kem: KemChoice | None,
    inputs: Sequence[str | os.PathLike[str] | BinaryIO],
) -> str | None:
    """What makes a run of 'pouch seal' the same command as an earlier one:
    its recipients (fingerprints), options, output and inputs (each file's
    path, size and time of change). None when there is nothing to compare:
    a body or an output that is a stream."""
    paths = [i for i in inputs if isinstance(i, (str, os.PathLike))]
    if not isinstance(out, (str, os.PathLike)) or len(paths) != len(inputs):
        return None
    files = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        files.append([os.path.realpath(path), str(st.st_size), str(st.st_mtime_ns)])
    command = {
        "to": sorted(to),
        "subject": subject,
        "reply_to": in_reply_to,
        "out": os.path.realpath(out),
        "options": [armor, pad, kem],
        "files": files,
    }
    return blake3.blake3(JOB_LABEL + _canonical.dumps(command)).hexdigest()


def seal_recorded(
    home: Home,
    identity: Identity,
    to: Sequence[Contact],
    body: BinaryIO,
    attachments: Sequence[tuple[str, BinaryIO]],
    *,
    out: Output,
    armor: bool,
    job: str | None,
    now: datetime,
    on_wait: Callable[[str], object],
    kind: LetterKind = "letter",
    subject: str = "",
    in_reply_to: str | None = None,
    kem: KemChoice | None = None,
    pad: bool = False,
) -> Sent:
    """Seal a letter and record it, in crash order (SPEC.md 5.3). A run of
    the same job that committed a letter and died before writing it out is
    completed instead: that letter is written out."""
    # One seal at a time in a home: a number reserved and not taken is then
    # one a run left when it died, safe to give out again.
    with _seal_lock(home, on_wait), home.register() as reg:
        earlier = reg.sealed_by(job) if job is not None else None
        if earlier is not None:
            # This command ran before: write out what it committed (if it
            # died before it could), never a second letter.
            write_out(home.archive(earlier.envelope), out, armor, completing=True)
            reg.published(earlier.id)
            return Sent(tuple(to), earlier.id, earlier.envelope, None, 0, earlier.date, True)
        if isinstance(out, (str, os.PathLike)) and os.path.lexists(out):
            # Refused before a number is reserved: a letter committed and
            # then not written out would be a gap its recipient never fills.
            raise RefusedError(f"{out} already exists", "pouch does not overwrite it")
        stream = reg.stream_id(new_stream_id)
        me = identity.fingerprint
        order = ledger.blocks_for(reg, me, [c.fingerprint for c in to], stream)
        crash_point("seal:reserved")
        path = Path(os.path.realpath(out)) if isinstance(out, (str, os.PathLike)) else None
        folder = path.parent if path is not None and not armor else None
        # Where a full or read-only disk stops it: the output, or the home.
        target = path if path is not None and folder else home.archive_path
        with writing(target):
            try:
                staged = StagedFile(folder or home.archive())
            except OSError as e:
                raise FileError(f"cannot write {target}: {e.strerror}", errno=e.errno) from None
        with contextlib.closing(staged):
            with writing(target):
                sealed = seal(identity, [c.card for c in to], body, staged.file,
                              attachments=attachments, stream=stream, order=order, now=now,
                              kind=kind, subject=subject, in_reply_to=in_reply_to, kem=kem,
                              pad=pad)  # fmt: skip
            kept = home.archive(sealed.envelope_id)
            try:
                if folder is None:
                    # Sealed in the archive's folder, for armor or a stream:
                    # the file is the home's alone, and is named there.
                    staged.file.flush()
                    os.fsync(staged.file.fileno())
                    staged.publish(kept, 0o600, replace=False)
                    fsync_directory(kept.parent)
                else:
                    staged.keep(kept)
            except OSError as e:
                raise FileError(
                    f"cannot keep the letter in {kept}: {e.strerror}; nothing was sent",
                    *room_hint(e.errno),
                    errno=e.errno,
                ) from None
            crash_point("seal:kept")
            private = {"subject": subject, "parts": [name for name, _ in attachments]}
            row = LetterRow(
                sealed.letter_id, sealed.envelope_id, "sent", kind, me,
                tuple(c.fingerprint for c in to), rfc3339(now), in_reply_to, stream, "sealed",
                ledger.seal_private(identity, sealed.letter_id, private, os.urandom),
                rfc3339(datetime.now(UTC)),
            )  # fmt: skip
            positions = [
                Position.of(sealed.letter_id, me, fp, stream, b, sealed.block_keys[fp])
                for fp, b in order.items()
            ]
            reg.record_sent(row, positions, None if path is None else str(path), job)
            crash_point("seal:committed")
            if path is not None and folder is not None:
                publish(staged, path)
            else:
                write_out(kept, out, armor)
            crash_point("seal:named")
            reg.published(sealed.letter_id)
        return Sent(tuple(to), sealed.letter_id, sealed.envelope_id, sealed.kem, sealed.size,
                    row.date, False)  # fmt: skip


@contextlib.contextmanager
def _seal_lock(home: Home, on_wait: Callable[[str], object]) -> Iterator[None]:
    """The home's seal lock, held (flock) until the block ends; the kernel
    drops it when the process dies, however it dies."""
    try:
        fd = os.open(home.path / "seal.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise FileError(f"cannot lock {home.path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait("another 'pouch seal' in this home")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_out(kept: Path, out: Output, armor: bool, completing: bool = False) -> None:
    """The archived container, to out: armored, to a stream, or (completing
    an interrupted run) as a file; completing, a file already there from
    that run is left as it is."""
    if completing and isinstance(out, (str, os.PathLike)) and os.path.exists(out):
        # Written by the run that was interrupted before it said so; but
        # the output is not fsynced (the archive is): a crash of the
        # machine can leave it named and empty.
        if archived_intact(Path(out), kept.stem):
            return
        raise RefusedError(
            f"{out} exists, but is not the letter this command sealed before "
            "(cut short by a crash, or another file)",
            "move it away and run the command again: pouch writes the letter out from its archive",
        )
    if completing and not archived_intact(kept, kept.stem):
        raise FileError(
            f"this command sealed a letter before (envelope {kept.stem[:12]}), and its archived "
            "copy is damaged or missing: it cannot be written out again",
            "the letter is recorded as sent; if you still have the file it was written to, "
            "'pouch open' it to repair the archive, else seal the letter anew "
            "(to another output)",
        )
    with open(kept, "rb") as src, contextlib.ExitStack() as stack:
        if isinstance(out, (str, os.PathLike)):
            dst: BinaryIO = stack.enter_context(atomic_output(out, replace=False))
        else:
            dst = out
        if armor:
            with ArmoredWriter(dst, ARMOR_LABEL) as a:
                while chunk := src.read(1 << 20):
                    a.write(chunk)
        else:
            shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
