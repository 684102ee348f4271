"""Transcripts: a correspondence, bundled so that a third party can check it
offline (SPEC.md section 6).

A transcript is a tar archive (ustar): `pouch-transcript.json` first, then
each letter's container, as the register archived it, under
`letters/<envelope id>.pouch`. Exported with disclosure, the manifest also
gives each letter's age file key and the order block keys of the two
parties: with them, anyone holding the two parties' cards can check every
letter (its header MAC, every segment's signature, the manifest, the
envelope binding), where each stands in its sender's stream, and every
custody chain, and can read the letters, but nothing else these keys
could open.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from . import _canonical, container
from ._fields import b64, is_hex64, is_int_in, is_rfc3339, read_object, unb64
from .custody import judge, read_trailer
from .errors import PouchError, UsageError, VerificationError
from .identity import Card, fingerprint
from .letter import verify_disclosed
from .letter.order import Position, missing_ranges, open_block

KIND = "pouch-transcript"
VERSION = 1
MANIFEST = "pouch-transcript.json"
MAX_MANIFEST = 64 << 20


@dataclass(frozen=True)
class Entry:
    letter: str
    envelope: str
    file_key: bytes | None  # disclosed: the letter can be read and checked
    blocks: dict[str, bytes]  # recipient fingerprint -> its order block key

    @property
    def member(self) -> str:
        return f"letters/{self.envelope}.pouch"

    def encode(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "envelope": self.envelope,
            "file_key": b64(self.file_key) if self.file_key else None,
            "blocks": {fp: b64(k) for fp, k in sorted(self.blocks.items())},
        }


def write(
    dst: BinaryIO,
    parties: Sequence[str],
    exported: str,
    entries: Sequence[Entry],
    containers: Iterable[BinaryIO],
) -> None:
    """Write a transcript: the manifest, then each entry's container."""
    manifest = _canonical.dumps({
        "v": VERSION,
        "kind": KIND,
        "parties": list(parties),
        "exported": exported,
        "disclosed": all(e.file_key is not None for e in entries),
        "letters": [e.encode() for e in entries],
    })  # fmt: skip
    with tarfile.open(fileobj=dst, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, MANIFEST, io.BytesIO(manifest), len(manifest))
        for entry, src in zip(entries, containers, strict=True):
            size = src.seek(0, io.SEEK_END)
            src.seek(0)
            _add(tar, entry.member, src, size)


def _add(tar: tarfile.TarFile, name: str, src: BinaryIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    tar.addfile(info, src)


@dataclass
class Report:
    letters: int = 0
    verified: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the correspondence, letter by letter


def verify(src: BinaryIO, cards: Sequence[Card]) -> Report:
    """Check a transcript against the two parties' cards. Every problem is
    reported; the transcript verifies only if there are none."""
    if len(cards) != 2 or cards[0].fingerprint == cards[1].fingerprint:
        raise UsageError("a transcript is checked against the cards of its two parties")
    parties = {c.fingerprint: c for c in cards}
    report = Report()
    try:
        tar = tarfile.open(fileobj=src, mode="r:")
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    except _TAR_ERRORS as e:
        raise VerificationError(f"not a pouch transcript: {e}") from None
    with tar:
        manifest = _manifest(tar, members)
        if set(manifest["parties"]) != set(parties):
            report.problems.append("the transcript is between other parties than these cards")
        placed: list[Position] = []
        entries = manifest["letters"]
        ids = {e.letter for e in entries}
        if not entries:
            report.problems.append("the transcript holds no letters")
        if len(ids) != len(entries) or len({e.envelope for e in entries}) != len(entries):
            report.problems.append("the transcript lists a letter twice")
        for entry in entries:
            report.letters += 1
            _check_letter(tar, members, entry, parties, ids, report, placed)
    _check_order(placed, {fp: c.name for fp, c in parties.items()}, report)
    return report


# What a damaged or hostile tar archive raises, as it is read.
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    try:
        f = tar.extractfile(member)
        if f is None:
            raise VerificationError(f"transcript damaged: {member.name} is not a file")
        return f.read()
    except _TAR_ERRORS as e:
        raise VerificationError(f"transcript damaged: {member.name}: {e}") from None


def _manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> dict[str, Any]:
    member = members.get(MANIFEST)
    if member is None:
        raise VerificationError("not a pouch transcript: it has no manifest")
    if member.size > MAX_MANIFEST:
        raise VerificationError("not a pouch transcript: a bad manifest")
    fields = {"v", "kind", "parties", "exported", "disclosed", "letters"}
    m = read_object(_read(tar, member), "transcript manifest", VerificationError, fields)
    if m["kind"] != KIND:
        raise VerificationError("malformed transcript manifest: unexpected fields")
    if not is_rfc3339(m["exported"]):
        raise VerificationError("malformed transcript manifest: bad time of export")
    if not isinstance(m["disclosed"], bool):
        raise VerificationError("malformed transcript manifest: bad disclosure flag")
    if not is_int_in(m["v"], VERSION, VERSION):
        raise VerificationError(
            f"transcript version {m['v']!r:.10} is not supported (this reads 1)"
        )
    if not isinstance(m["parties"], list) or not all(is_hex64(p) for p in m["parties"]):
        raise VerificationError("malformed transcript manifest: bad parties")
    if not isinstance(m["letters"], list):
        raise VerificationError("malformed transcript manifest: bad letters")
    m["letters"] = [_entry(x) for x in m["letters"]]
    return m


def _entry(x: object) -> Entry:
    if not isinstance(x, dict) or set(x) != {"letter", "envelope", "file_key", "blocks"}:
        raise VerificationError("malformed transcript manifest: a bad letter entry")
    blocks = x["blocks"]
    if (
        not is_hex64(x["letter"])
        or not is_hex64(x["envelope"])
        or not isinstance(blocks, dict)
        or not all(is_hex64(fp) for fp in blocks)
    ):
        raise VerificationError("malformed transcript manifest: a bad letter entry")
    try:
        key = None if x["file_key"] is None else unb64(x["file_key"], "file key", PouchError)
        keys = {fp: unb64(k, "block key", PouchError) for fp, k in blocks.items()}
    except PouchError:
        raise VerificationError("malformed transcript manifest: a bad key") from None
    return Entry(x["letter"], x["envelope"], key, keys)


def _check_letter(
    tar: tarfile.TarFile,
    members: dict[str, tarfile.TarInfo],
    entry: Entry,
    parties: dict[str, Card],
    ids: set[str],
    report: Report,
    placed: list[Position],
) -> None:
    short = entry.letter[:12]
    member = members.get(entry.member)
    if member is None:
        report.problems.append(f"letter {short}: its container is not in the transcript")
        return
    if entry.file_key is None:
        report.problems.append(f"letter {short}: sealed, not disclosed: it cannot be checked "
                               "(export with --decrypted)")  # fmt: skip
        return
    try:
        c = container.load(io.BytesIO(_read(tar, member)))
        opened = verify_disclosed(c, entry.file_key)
    except PouchError as e:
        report.problems.append(f"letter {short}: {e.message}")
        return
    h = opened.header
    sender = fingerprint(h.sender)
    recipients = [fingerprint(r) for r in h.recipients]
    if opened.letter_id != entry.letter or opened.envelope_id != entry.envelope:
        report.problems.append(f"letter {short}: its ids are not the ones the manifest gives")
        return
    if sender not in parties or not set(recipients) & (set(parties) - {sender}):
        report.problems.append(f"letter {short}: not a letter between the two parties")
        return
    if h.sender != parties[sender].signing_key:
        report.problems.append(f"letter {short}: signed by another key than its sender's card")
        return
    report.verified += 1
    for fp in recipients:
        if fp not in parties:
            continue
        key = entry.blocks.get(fp)
        if key is None:
            report.problems.append(f"letter {short}: the order block for {parties[fp].name} "
                                   "is not disclosed")  # fmt: skip
            continue
        try:
            block = open_block(key, h.blocks[fp], h.sender, fp)
        except PouchError as e:
            report.problems.append(f"letter {short}: {e.message}")
            continue
        placed.append(Position.of(entry.letter, sender, fp, h.stream, block))
        to = parties[fp].name
        kind = " (receipt)" if h.kind == "receipt" else ""
        report.lines.append(f"{h.date}  {parties[sender].name} -> {to}  #{block.seq}  "
                            f"{short}{kind}  {h.subject}")  # fmt: skip
    if h.in_reply_to is not None and h.in_reply_to not in ids:
        report.warnings.append(f"letter {short} answers {h.in_reply_to[:12]}, which is not in "
                               "the transcript")  # fmt: skip
    trailer = read_trailer(c)
    if trailer.records or trailer.problems:
        principals = {card.signing_key for card in parties.values()}
        verdict = judge(entry.envelope, trailer, principals)
        report.problems += [f"letter {short}, custody: {p}" for p in verdict.problems]
        report.warnings += [f"letter {short}, custody: {p}" for p in verdict.flags]


def _check_order(placed: list[Position], names: dict[str, str], report: Report) -> None:
    """Each sender's stream to each recipient: no number twice, none
    missing, every letter naming the one before it; and every
    acknowledgment naming a letter in the transcript (so that a letter
    withheld from the end shows, once the other side acknowledged it)."""
    where = {(p.sender, p.recipient, p.stream, p.seq): p.letter for p in placed}
    for p in placed:
        if p.ack is None:
            continue
        held = where.get((p.recipient, p.sender, p.ack.stream, p.ack.seq))
        if held is None or (p.ack.letter is not None and p.ack.letter != held):
            report.problems.append(
                f"{names[p.sender]} acknowledges letter #{p.ack.seq} from {names[p.recipient]} "
                f"(stream {p.ack.stream[:8]}), which is not in the transcript"
            )
    streams: dict[tuple[str, str, str], dict[int, list[Position]]] = {}
    for p in placed:
        streams.setdefault((p.sender, p.recipient, p.stream), {}).setdefault(p.seq, []).append(p)
    for (sender, recipient, stream), by_seq in sorted(streams.items()):
        who = f"{names[sender]} to {names[recipient]} (stream {stream[:8]})"
        for first, last in missing_ranges(by_seq, max(by_seq)):
            which = f"letter #{first} is" if first == last else f"letters #{first} to #{last} are"
            report.problems.append(f"{who}: {which} not in the transcript")
        for seq, here in sorted(by_seq.items()):
            if len({p.letter for p in here}) > 1:
                report.problems.append(f"{who}: two different letters at #{seq} (a fork)")
            before = by_seq.get(seq - 1)
            for p in here:
                if before and p.prev not in {b.letter for b in before}:
                    report.problems.append(f"{who}: #{seq} names another letter before it")
