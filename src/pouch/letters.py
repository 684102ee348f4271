"""The verbs of the letters layer: seal, open_letter, inspect.

seal writes a .pouch container: the signed letter (letter.py), encrypted
with the age engine to every recipient, in the container (container.py).
open_letter reverses it and checks, in order: that the envelope opens with
this identity; that the letter names this identity among its recipients
(else it was forwarded); that the letter's signed envelope binding matches
the envelope it came in (else it was moved); every segment's signature; the
manifest; that nothing follows it; and that the age stanzas are of the kind
the letter claims. Only then are its parts published.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import blake3

from . import _parallel_open, _parallel_seal, age, container
from ._pipeline import BufferRing, Worker
from .age import _parallel
from .age._format import parse_header
from .age._stream import ENC_CHUNK_SIZE
from .errors import LetterError, NotAddressedError, UsageError
from .identity import Card, Identity, fingerprint, rfc3339
from .letter import (
    DATA,
    SEGMENT_SIZE,
    Checks,
    LetterHeader,
    LetterReader,
    LetterWriter,
    Manifest,
    envelope_binding,
)
from .order import Block, block_key, open_block, seal_blocks

Rand = Callable[[int], bytes]
PQ, CLASSIC = "mlkem768x25519", "x25519"


@dataclass(frozen=True)
class Sealed:
    letter_id: str
    envelope_id: str
    kem: str
    decoys: int
    size: int
    block_keys: dict[str, bytes]  # each recipient's order block key (for transcripts)


def choose_kem(recipients: Sequence[Card], want: str | None) -> str:
    """Post-quantum whenever every recipient has a post-quantum key.

    want "pq" refuses any fallback; "classic" seals X25519 only (for readers
    with an age that has no post-quantum support).
    """
    missing = [c.name for c in recipients if c.pq is None]
    if want == "classic":
        return CLASSIC
    if missing and want == "pq":
        raise UsageError(
            f"{', '.join(missing)} has no post-quantum key: --pq can't be honoured",
            "drop --pq to seal with X25519 for everyone",
        )
    return CLASSIC if missing else PQ


class _Output:
    """The age ciphertext's way out, in batches of about 1 MiB: written on
    one worker and hashed (the envelope id) on another, each in order."""

    def __init__(self, dst: BinaryIO, writer: Worker, hasher: Worker) -> None:
        self._dst = dst
        try:
            self._fd: int | None = dst.fileno()
            dst.flush()
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            self._fd = None
        self._writer = writer
        self._hasher = hasher
        self._hash = blake3.blake3()
        self._batch: list[bytes] = []
        self._batched = 0
        self.length = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        # encrypt() returns fresh bytes; anything else is copied, because
        # the caller may reuse its buffer before the workers get to it.
        self._batch.append(data if isinstance(data, bytes) else bytes(data))
        self._batched += len(data)
        self.length += len(data)
        if self._batched >= 1 << 20:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        if batch:
            self._writer.submit(self._write, batch)
            self._hasher.submit(_update, self._hash, batch)

    def _write(self, batch: list[bytes]) -> None:
        if self._fd is None:
            for piece in batch:
                self._dst.write(piece)
            return
        views = [memoryview(b) for b in batch]
        while views:
            n = os.writev(self._fd, views)
            while views and n >= len(views[0]):
                n -= len(views.pop(0))
            if views and n:
                views[0] = views[0][n:]

    def close(self) -> str:
        """Write what is left; the envelope id."""
        self._flush()
        self._writer.finish()
        self._hasher.finish()
        return self._hash.hexdigest()


def _update(h: blake3.blake3, pieces: list[bytes]) -> None:
    for piece in pieces:
        h.update(piece)


def _decoys(count: int, kem: str, rand: Rand) -> list[age.Recipient]:
    if kem == PQ:
        return [age.HybridIdentity.generate(rand).recipient for _ in range(count)]
    return [age.X25519Identity.generate(rand).recipient for _ in range(count)]


def _shuffle(items: list[age.Recipient], rand: Rand) -> None:
    # Fisher-Yates: decoy stanzas must not sit in a telling place.
    for i in range(len(items) - 1, 0, -1):
        j = int.from_bytes(rand(8), "big") % (i + 1)
        items[i], items[j] = items[j], items[i]


def decoy_count(n: int) -> int:
    """Stanzas are padded to a power of two, at least four."""
    total = 4
    while total < n:
        total *= 2
    return total - n


def seal(
    identity: Identity,
    recipients: Sequence[Card],
    body: BinaryIO,
    dst: BinaryIO,
    *,
    attachments: Sequence[tuple[str, BinaryIO]] = (),
    subject: str = "",
    in_reply_to: str | None = None,
    kem: str | None = None,
    pad: bool = False,
    stream: str,
    order: dict[str, Block],
    now: datetime | None = None,
    rand: Rand = os.urandom,
    jobs: int | None = None,
    kind: str = "letter",
) -> Sealed:
    """Seal a letter from identity to recipients into dst (seekable, empty).

    kem is None (post-quantum when every recipient has a key), "pq" or
    "classic". order maps each recipient's fingerprint to its order block
    (the register makes them) and stream is this home's stream id. The
    sender gets a copy of its own: one more stanza, for its own key.

    When body and attachments are regular files and dst is a regular file
    open for reading and writing, jobs processes (by default one per core)
    seal it; the letter is the same byte for byte.
    """
    if not recipients:
        raise UsageError("a letter needs at least one recipient")
    if len({c.fingerprint for c in recipients}) != len(recipients):
        raise UsageError("a recipient is named twice")
    chosen = choose_kem(recipients, kem)
    if set(order) != {c.fingerprint for c in recipients}:
        raise UsageError("a letter needs one order block per recipient")
    age_recipients: list[age.Recipient] = [
        c.pq if chosen == PQ and c.pq is not None else c.x25519 for c in recipients
    ]
    age_recipients.append(identity.pq.recipient if chosen == PQ else identity.x25519.recipient)
    decoys = decoy_count(len(recipients)) if pad else 0
    age_recipients += _decoys(decoys, chosen, rand)
    _shuffle(age_recipients, rand)

    order_key, blocks, block_keys = seal_blocks(
        {c.fingerprint: (c.x25519.public_bytes, order[c.fingerprint]) for c in recipients},
        identity.signing_key,
        rand,
    )
    start = dst.tell()
    dst.write(container.header(0))
    enc = age.Encryptor(age_recipients, rand=rand)
    header = LetterHeader(
        sender=identity.signing_key,
        recipients=tuple(c.signing_key for c in recipients),
        date=rfc3339(now or datetime.now(UTC)),
        subject=subject,
        in_reply_to=in_reply_to,
        stream=stream,
        order_key=order_key,
        blocks=blocks,
        kem=chosen,
        padding=pad,
        decoys=decoys,
        envelope=envelope_binding(enc.header, enc.nonce),
        kind=kind,
    )
    parts: list[tuple[str | None, BinaryIO]] = [(None, body), *attachments]
    jobs = jobs or _parallel.default_jobs()
    layout = None
    if jobs > 1 and _parallel_seal.usable(dst):
        letter = LetterWriter(lambda _: None, header, identity.signing)
        layout = _parallel_seal.plan(len(letter.prefix), parts, pad)
    if layout is not None and _parallel_seal.worth_it(layout, jobs):
        letter_id, envelope_id, length = _parallel_seal.seal(enc, letter, layout, dst, jobs)
    else:
        letter_id, envelope_id, length = _seal_stream(enc, header, identity, parts, pad, dst)
    end = start + container.HEADER.size + length
    dst.seek(start)
    dst.write(container.header(length))
    dst.seek(end)
    return Sealed(letter_id, envelope_id, chosen, decoys, end - start, block_keys)


def _seal_stream(
    enc: age.Encryptor,
    header: LetterHeader,
    identity: Identity,
    parts: list[tuple[str | None, BinaryIO]],
    pad: bool,
    dst: BinaryIO,
) -> tuple[str, str, int]:
    """Seal from any kind of input (a pipe, a terminal), in one pass: this
    thread encrypts (pyca holds the GIL) while workers hash the segments,
    write the ciphertext and hash it (all three release the GIL)."""
    with Worker("hash") as hashes, Worker("out") as out, Worker("envelope") as tapped:
        output = _Output(dst, out, tapped)
        with enc.writer(output) as w:  # type: ignore[arg-type]
            letter = LetterWriter(w.write, header, identity.signing, hashes)
            for name, src in parts:
                letter.add_part(src, name)
            if pad:
                letter.pad()
            letter_id = letter.close()
        return letter_id, output.close(), output.length


def new_stream_id(rand: Rand = os.urandom) -> str:
    return rand(16).hex()


# --- opening ----------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    header: LetterHeader
    manifest: Manifest
    letter_id: str
    envelope_id: str
    stanzas: int
    torn_trailer: bool
    order: Block | None  # my order block; None when I opened a letter I sent
    order_key: bytes | None

    @property
    def own(self) -> bool:
        """A letter I sent, opened from my own copy."""
        return self.order is None

    @property
    def post_quantum(self) -> bool:
        return self.header.kem == PQ

    @property
    def sender_fingerprint(self) -> str:
        return fingerprint(self.header.sender)


PartSink = Callable[[int], BinaryIO | None]


def open_letter(
    identity: Identity,
    source: str | os.PathLike[str] | BinaryIO,
    sink: PartSink,
    *,
    jobs: int | None = None,
) -> Opened:
    """Open the container at source (a path or a seekable file) with identity.

    sink(part) gives the file to write a part's verified segments to (part
    0 is the body), or None to verify it without keeping it. What reaches a
    sink is not yet the whole letter's verdict: the caller publishes only
    after this returns, and discards everything if it raises.

    A large letter in a regular file whose parts go to regular files is
    opened by jobs processes (by default one per core), which call sink
    for every part before writing any.
    """
    c = container.load(source)
    jobs = jobs or _parallel.default_jobs()
    if jobs > 1 and _parallel.worth_it(c.age_length // ENC_CHUNK_SIZE, jobs) and _is_file(c.src):
        opened, sinks = _open_parallel(identity, c, sink, jobs)
        if opened is not None:
            return opened

        def sink_again(part: int) -> BinaryIO | None:
            return sinks.pop(part) if part in sinks else sink(part)

        return _open_stream(identity, c, sink_again)
    return _open_stream(identity, c, sink)


def _open_stream(identity: Identity, c: container.Container, sink: PartSink) -> Opened:
    # The envelope id is hashed, and the parts written, on two workers while
    # this thread decrypts and verifies.
    with Worker("envelope") as tapped, Worker("hash") as hashes, Worker("out") as out:
        envelope = blake3.blake3()
        stream = c.age_stream(tap=lambda block: tapped.submit(envelope.update, block))
        d = age.Decryptor(stream, [identity.pq, identity.x25519])
        reader = LetterReader(io.BufferedReader(d.reader(), buffer_size=1 << 20))
        _check_envelope(identity, reader.header, d)
        outputs: dict[int, BinaryIO | None] = {}
        for part, data in reader.data(hashes, BufferRing(10, SEGMENT_SIZE)):
            if part not in outputs:
                outputs[part] = sink(part)
            target = outputs[part]
            if target is not None:
                reader.hold(out.submit(target.write, data))
        tapped.finish()
        envelope_id = envelope.hexdigest()
    assert reader.manifest is not None and reader.letter_id is not None
    _check_stanzas(reader.header, d)
    return Opened(
        reader.header, reader.manifest, reader.letter_id, envelope_id, len(d.stanzas), c.torn,
        *_my_block(identity, reader.header),
    )  # fmt: skip


def verify_disclosed(source: str | os.PathLike[str] | BinaryIO, file_key: bytes) -> Opened:
    """Verify the letter in source with its disclosed file key, as a third
    party does with a transcript: the header MAC (so the key is this file's),
    every segment's signature, the manifest, the envelope binding and the
    stanzas; no identity, nothing kept. Not addressed to the verifier, so
    order blocks are not opened here (their keys are disclosed apart)."""
    c = container.load(source)
    with c.src:
        envelope = blake3.blake3()

        def tap(block: memoryview) -> None:
            envelope.update(block)

        d = age.Decryptor(c.age_stream(tap=tap), [age.DisclosedKey(file_key)])
        reader = LetterReader(io.BufferedReader(d.reader(), buffer_size=1 << 20))
        if reader.header.envelope != envelope_binding(d.header, d.nonce):
            raise LetterError(
                "the letter was moved into another envelope: its header names another"
            )
        for _ in reader.data():
            pass
        _check_stanzas(reader.header, d)
    assert reader.manifest is not None and reader.letter_id is not None
    return Opened(reader.header, reader.manifest, reader.letter_id, envelope.hexdigest(),
                  len(d.stanzas), c.torn, None, None)  # fmt: skip


def disclose(identity: Identity, source: str | os.PathLike[str] | BinaryIO) -> bytes:
    """The file key of a letter identity can open (received, or its own
    copy of one it sent), to disclose in a transcript."""
    c = container.load(source)
    with c.src:
        return age.Decryptor(c.age_stream(), [identity.pq, identity.x25519]).disclose()


def _open_parallel(
    identity: Identity, c: container.Container, sink: PartSink, jobs: int
) -> tuple[Opened | None, dict[int, BinaryIO | None]]:
    """Open on jobs processes (_parallel_open.py). When a part's file is not
    a regular one, returns None and the files the sink gave."""
    d = age.Decryptor(c.age_stream(), [identity.pq, identity.x25519])
    p = _parallel_open.payload(c, d.header, d.payload_aead)
    p.check_last()
    reader = LetterReader(io.BufferedReader(d.reader(), buffer_size=1 << 20))
    header = reader.header
    _check_envelope(identity, header, d)
    checks = Checks(header, reader.header_bytes)
    start = _parallel_open.letter_start(reader.header_bytes)
    try:
        segments, final = _parallel_open.layout(p, start, checks)
    except _parallel_open.TooManySegmentsError:
        return None, {}
    files: dict[int, BinaryIO | None] = {}
    for seg in segments:
        if seg.kind == DATA and seg.part not in files:
            files[seg.part] = sink(seg.part)
    fds = _parallel_open.usable(files)
    if fds is None:
        return None, files
    envelope_id = _parallel_open.open_segments(p, checks, segments, fds, c, jobs)
    _parallel_open.written(files, segments)
    manifest, seg_hash = _parallel_open.verify_segment(p, checks, final)
    m = checks.final(final.index, final.part, manifest, seg_hash)
    assert checks.letter_id is not None
    _check_stanzas(header, d)
    opened = Opened(header, m, checks.letter_id, envelope_id, len(d.stanzas), c.torn,
                    *_my_block(identity, header))  # fmt: skip
    return opened, files


def _is_file(f: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return False


def _check_envelope(identity: Identity, header: LetterHeader, d: age.Decryptor) -> None:
    """Addressed to this identity, and in the envelope it was sealed into.
    Run before the header's signature is verified (with the segments):
    refusing early is safe."""
    if identity.signing_key not in header.recipients and identity.signing_key != header.sender:
        raise NotAddressedError(
            "not addressed to you: this letter was forwarded",
            "its signed header names other recipients; it was re-encrypted to you",
        )
    if header.envelope != envelope_binding(d.header, d.nonce):
        raise LetterError(
            "the letter was moved into another envelope: its header names another one",
            "do not trust it; ask the sender for the original",
        )


def _check_stanzas(header: LetterHeader, d: age.Decryptor) -> None:
    expected = "mlkem768x25519" if header.kem == PQ else "X25519"
    # One stanza per recipient, the sender's own copy, and the decoys.
    if len(d.stanzas) != len(header.recipients) + 1 + header.decoys or any(
        s.type != expected for s in d.stanzas
    ):
        raise LetterError("the envelope's recipient stanzas do not match what the letter declares")


def _my_block(identity: Identity, header: LetterHeader) -> tuple[Block | None, bytes | None]:
    """My order block and its key, once the letter verified (the header is
    signed); none in a letter I sent."""
    if identity.signing_key not in header.recipients:
        return None, None
    mine = identity.fingerprint
    key = block_key(
        identity.x25519.exchange, header.order_key, identity.x25519.recipient.public_bytes
    )
    return open_block(key, header.blocks[mine], header.sender, mine), key


def sanitize_name(name: str, index: int) -> str:
    """A safe file name for an attachment: no directories, no traversal, no
    control or invisible characters, no hidden files; at most 200 bytes of
    UTF-8 (file systems count bytes, and 255 is the usual limit)."""
    base = name.replace("\\", "/").split("/")[-1]
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip()
    base = base.lstrip(".").strip()
    base = base.encode("utf-8")[:200].decode("utf-8", "ignore").strip()
    return base or f"attachment-{index}"


@dataclass(frozen=True)
class Inspection:
    envelope_id: str
    size: int
    bare: bool
    version: int | None
    stanzas: int
    stanza_types: tuple[str, ...]
    records: tuple[container.RecordRef, ...]
    torn_trailer: bool


def inspect(path: str | os.PathLike[str]) -> Inspection:
    """What a carrier sees without keys. Never decrypts."""
    c = container.load(path)
    header = parse_header(c.age_stream())
    env = c.envelope_id()
    size = c.src.seek(0, os.SEEK_END)
    return Inspection(
        env,
        size,
        c.bare,
        None if c.bare else container.VERSION,
        len(header.stanzas),
        tuple(s.type for s in header.stanzas),
        tuple(c.records),
        c.torn,
    )
