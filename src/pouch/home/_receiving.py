"""Receiving: a letter opened, verified, placed in the ledger, archived,
and only then released (SPEC.md sections 2.4 and 5.3); a receipt for a
letter sent, checked and recorded.

The order is the crash order: the letter is verified (its parts written
under temporary names), recorded with its container archived, and only
then are its parts named. A run killed in between leaves a letter recorded
and not released, which the same command completes; a fork is recorded (both
letters kept, as evidence) and refused, every time it comes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import resource
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from .._fields import is_prefix, rfc3339
from .._io import StagedFile, crash_point, publish_all, writing
from ..container import Container, Source, loaded
from ..errors import (
    CustodyError,
    FileError,
    ForkError,
    LetterError,
    RefusedError,
    UsageError,
)
from ..identity import fingerprint
from ..letter import Opened, open_letter, sanitize_name
from ..letter.receipts import Receipt
from . import ledger
from ._ledger_store import LetterRow
from .carry import CustodyReport, custody_on_open
from .ledger import Arrival

if TYPE_CHECKING:
    from .post import Post

# Without a folder and without a stream, the body is held in memory until
# the whole letter verified; past this size, the caller must choose one.
MAX_HELD_BODY = 16 << 20
RECEIPT_HELD = 1 << 20


class Received(NamedTuple):
    """A letter opened: verified, recorded, its parts released."""

    opened: Opened
    arrival: Arrival  # where it stands in its sender's correspondence
    custody: CustodyReport
    saved: dict[int, str]  # part -> the file it was named, when opened into a folder
    body: bytes | None  # the body, held, when neither a folder nor a stream took it


class CheckedReceipt(NamedTuple):
    """A delivery receipt for a letter this home sent, checked and recorded."""

    receipt: Receipt
    signer: str  # fingerprint: the recipient, or its receiver


def receive(
    post: Post,
    source: Source,
    into: str | os.PathLike[str] | None = None,
    *,
    stream: BinaryIO | None = None,
    force: bool = False,
    require_accredited: bool = False,
) -> Received:
    if into is None:
        return _receive(post, source, None, stream, force, require_accredited)
    with writing(into):
        made = _make_folder(into)
        try:
            _raise_file_limit()
            return _receive(post, source, Path(into), stream, force, require_accredited)
        except BaseException:
            if made:  # and left empty: nothing is named before the end
                with contextlib.suppress(OSError):
                    os.rmdir(into)
            raise


def _prefix(query: str) -> str:
    if not is_prefix(query.lower()):
        raise UsageError(f"{query!r} is not an id", "give an id, or at least 8 of its first digits")
    return query.lower()


def _make_folder(path: str | os.PathLike[str]) -> bool:
    """Make the folder path, not its parents (a typo in them is more likely
    than a wish for a new tree); True if it was made."""
    if os.path.isdir(path):
        return False
    if os.path.lexists(path):
        raise FileError(f"{os.fspath(path)} is not a folder")
    try:
        os.mkdir(path, 0o700)  # what it will hold, and their names, are the letter's
    except FileNotFoundError:
        raise FileError(
            f"cannot make the folder {os.fspath(path)}: its parent folder does not exist"
        ) from None
    except OSError as e:
        raise FileError(
            f"cannot make the folder {os.fspath(path)}: {e.strerror}", errno=e.errno
        ) from None
    return True


def _receive(
    post: Post,
    source: Source,
    into: Path | None,
    stream: BinaryIO | None,
    force: bool,
    require_accredited: bool,
) -> Received:
    outputs = _Outputs(into, stream)
    with contextlib.closing(outputs), loaded(source) as c:
        # Several cores only into a folder: a stream and the body held
        # in memory are written as a stream.
        jobs = None if into is not None else 1
        opened = open_letter(post.identity, c, outputs.sink, jobs=jobs)
        custody = custody_on_open(post.home, c, opened, post.card.signing_key)
        if require_accredited and custody.problems:
            raise CustodyError(
                "refused: its custody does not verify (--require-accredited)",
                *custody.problems[:5],
            )
        # Recorded before anything is named: a crash leaves a letter
        # either recorded (a re-run completes it) or not at all.
        arrival = _record_arrival(post, c, opened)
        crash_point("open:recorded")
        # Parts already there, byte for byte (a run that died, or a
        # replay): named.
        saved = _publish(opened, outputs, force, arrival.kind in ("completion", "replay"))
        crash_point("open:named")
        if arrival.kind not in ("replay", "own"):
            with post.home.register() as reg:
                reg.published(opened.letter_id)
    held = outputs.held.getvalue() if outputs.held is not None else None
    return Received(opened, arrival, custody, saved, held)


def check_receipt(
    post: Post, source: Source, letter_id: str | None = None, envelope: str | None = None
) -> CheckedReceipt:
    with loaded(source) as c:
        return _check_receipt(post, c, letter_id, envelope)


def _check_receipt(
    post: Post, c: Container, letter_id: str | None, envelope: str | None
) -> CheckedReceipt:
    # A receipt's body is a few hundred bytes.
    held = _Bounded(RECEIPT_HELD, "a receipt's body is small: this one is too large to hold")
    opened = open_letter(post.identity, c, lambda part: held if part == 0 else None, jobs=1)
    if opened.header.kind != "receipt":
        raise UsageError("this is a letter, not a receipt: 'pouch open' opens it")
    r = Receipt.decode(held.getvalue())
    signer = opened.sender_fingerprint
    if r.letter != opened.header.in_reply_to:
        raise LetterError("the receipt names another letter than the one it answers")
    if r.signer != signer:
        raise LetterError("the receipt names another signer than the one who signed it")
    if r.sender != post.me:
        raise LetterError("this receipt is for a letter someone else sent")
    # Either may be given as a prefix (SPEC.md 0), as every id may.
    if letter_id is not None and not r.letter.startswith(_prefix(letter_id)):
        raise LetterError(f"a receipt for another letter: {r.letter[:16]}, not {letter_id[:16]}")
    if envelope is not None and not r.envelope.startswith(_prefix(envelope)):
        raise LetterError(f"a receipt for another pouch: {r.envelope[:16]}, not {envelope[:16]}")
    with post.home.register() as reg:
        by_receiver = any(
            cred.principal_fingerprint == r.recipient
            and cred.agent_fingerprint == signer
            and cred.role == "receiver"
            and cred.covers(r.time)
            and reg.revocation(cred) is None
            for cred, _ in reg.credentials()
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
    _record_arrival(post, c, opened)
    with post.home.register() as reg:
        reg.published(opened.letter_id)
        reg.add_receipt(r.letter, opened.letter_id, "letter", signer, r.time)
    return CheckedReceipt(r, signer)


def _record_arrival(post: Post, c: Container, opened: Opened) -> Arrival:
    """Place the letter in the ledger and keep its container; a fork is
    recorded (both letters kept, as evidence), then refused."""
    header = opened.header
    with post.home.register() as reg:
        names = {x.fingerprint: x.name for x in reg.contacts()}

        def name(fp: str) -> str:
            return names.get(fp, fp[:16])

        arrival = ledger.classify(reg, post.me, opened.letter_id, opened.sender_fingerprint,
                                  header.stream, opened.order, name)  # fmt: skip
        if arrival.kind == "fork" and arrival.position is None:
            raise ForkError(*arrival.notes, "nothing was written")
        if arrival.kind in ("replay", "completion", "own"):
            # A letter held already: this verified copy makes a damaged or
            # missing archived one whole again.
            if post.home.keep(c, opened.envelope_id):
                arrival.notes.append(
                    "its archived copy was damaged or missing: it is whole again, from this file"
                )
            return arrival
        post.home.keep(c, opened.envelope_id)
        private = {"subject": header.subject,
                   "parts": [p.name for p in opened.manifest.parts[1:]]}  # fmt: skip
        now = rfc3339(datetime.now(UTC))
        row = LetterRow(
            opened.letter_id, opened.envelope_id, "received", header.kind,
            opened.sender_fingerprint, tuple(fingerprint(r) for r in header.recipients),
            header.date, header.in_reply_to, header.stream,
            "forked" if arrival.kind == "fork" else "received",
            ledger.seal_private(post.identity, opened.letter_id, private, os.urandom), now,
        )  # fmt: skip
        position = arrival.position
        if position is not None:
            position = dataclasses.replace(position, block_key=opened.order_key)
        reg.record_received(row, position, arrival.forks, now)
    if arrival.kind == "fork":
        raise ForkError(
            *arrival.notes,
            "both letters are kept in your register: 'pouch letters "
            f"{name(opened.sender_fingerprint)}' lists them; nothing was written",
        )
    return arrival


@dataclass
class _Outputs:
    """Where the parts of a letter being opened go."""

    directory: Path | None
    stream: BinaryIO | None
    held: io.BytesIO | None = None
    staged: dict[int, StagedFile] = field(default_factory=dict)

    def sink(self, part: int) -> BinaryIO | None:
        if self.directory is not None:
            try:
                staged = StagedFile(self.directory)
            except OSError as e:
                raise FileError(
                    f"cannot write in {self.directory}: {e.strerror}", errno=e.errno
                ) from None
            self.staged[part] = staged
            return staged.file
        if part != 0:
            return None  # verified, not kept: attachments need a folder
        if self.stream is not None:
            return self.stream
        self.held = _Bounded(
            MAX_HELD_BODY,
            "the body is too large to hold until it is verified",
            "write it to a folder with -o DIR, or release it as it verifies with --stream",
        )
        return self.held

    def close(self) -> None:
        for staged in self.staged.values():
            staged.close()


class _Bounded(io.BytesIO):
    """Memory that holds at most limit bytes; a UsageError past that."""

    def __init__(self, limit: int, *refusal: str) -> None:
        super().__init__()
        self._limit, self._refusal = limit, refusal

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self._limit:
            raise UsageError(*self._refusal)
        return super().write(data)


def _raise_file_limit() -> None:
    """Each part of a letter is a staged file, open until the letter
    verified; a letter may have up to 1,000 of them."""
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


def _publish(opened: Opened, outputs: _Outputs, force: bool, completing: bool) -> dict[int, str]:
    """Name the staged parts, all or none; returns part -> path. Completing
    a run that died while naming them, a part already there with the same
    bytes counts as named."""
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
    # What a letter holds is for its reader: the files are private (0600).
    publish_all(
        [(outputs.staged[i], path) for i, path in names.items() if i not in named_before],
        replace=force,
        mode=0o600,
    )
    return {i: str(p) for i, p in names.items()}
