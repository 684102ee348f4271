"""Opening a letter (SPEC.md section 2.4), verifying it, and what a carrier
sees of one without keys.

open_letter checks, in order: that the envelope opens with this identity;
that the letter names this identity among its recipients (else it was
forwarded); that the letter's signed envelope binding matches the envelope
it came in (else it was moved); every segment's signature; the manifest;
that nothing follows it; and that the age stanzas are of the kind the
letter claims. What it writes to the caller's sinks is not yet the verdict:
the caller publishes only once it returned.

One thread decrypts while workers hash and write; a large letter in a
regular file whose parts go to regular files is opened on every core
instead (_parallel_open.py).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import blake3

from .. import _cores, age, container
from .._pipeline import BufferRing, Worker
from ..container import Source, loaded
from ..errors import LetterError, NoIdentityMatchError, NotAddressedError, PouchError
from ..identity import Identity, fingerprint
from . import _parallel_open
from ._format import DATA, PQ, SEGMENT_SIZE, LetterHeader, Manifest, envelope_binding
from ._segments import Checks, LetterReader
from .order import Block, block_key, open_block


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
    source: Source,
    sink: PartSink,
    *,
    jobs: int | None = None,
) -> Opened:
    """Open the container in source (a container, a path or a seekable
    file) with identity.

    sink(part) gives the file to write a part's verified segments to (part
    0 is the body), or None to verify it without keeping it. What reaches a
    sink is not yet the whole letter's verdict: the caller publishes only
    after this returns, and discards everything if it raises.

    A large letter in a regular file whose parts go to regular files is
    opened by jobs processes (by default one per core), which call sink
    for every part before writing any.
    """
    jobs = jobs or _cores.default_jobs()
    with loaded(source) as c:
        try:
            chunks = c.age_length // age.ENC_CHUNK_SIZE
            if jobs > 1 and _cores.worth_it(chunks, jobs) and _is_file(c.src):
                opened, sinks = _open_parallel(identity, c, sink, jobs)
                if opened is not None:
                    return opened

                def sink_again(part: int) -> BinaryIO | None:
                    return sinks.pop(part) if part in sinks else sink(part)

                return _open_stream(identity, c, sink_again)
            return _open_stream(identity, c, sink)
        except NoIdentityMatchError as e:
            raise _not_for(identity, c, e) from None


def _not_for(
    identity: Identity, c: container.Container, e: NoIdentityMatchError
) -> NoIdentityMatchError:
    """No key of identity opens c's envelope: say so in the letter's terms
    (a file sealed with a passphrase keeps age's own message)."""
    try:
        stanzas = age.parse_header(c.age_stream()).stanzas
    except PouchError:
        return e
    if any(s.type == "scrypt" for s in stanzas):
        return e
    n = len(stanzas)
    return NoIdentityMatchError(
        "this letter is not addressed to you",
        f"its envelope has {n} recipient{'s' if n != 1 else ''} (with any decoys); "
        f"yours are {str(identity.pq.recipient)[:20]}… and {str(identity.x25519.recipient)[:16]}…",
        "if it was sealed to another home of yours, open it there",
    )


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


def verify_disclosed(source: Source, file_key: bytes) -> Opened:
    """Verify the letter in source with its disclosed file key, as a third
    party does with a transcript: the header MAC (so the key is this file's),
    every segment's signature, the manifest, the envelope binding and the
    stanzas; no identity, nothing kept. Not addressed to the verifier, so
    order blocks are not opened here (their keys are disclosed apart)."""
    with loaded(source) as c:
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


def disclose(identity: Identity, source: Source) -> bytes:
    """The file key of a letter identity can open (received, or its own
    copy of one it sent), to disclose in a transcript."""
    with loaded(source) as c:
        return age.Decryptor(c.age_stream(), [identity.pq, identity.x25519]).disclose()


def _open_parallel(
    identity: Identity, c: container.Container, sink: PartSink, jobs: int
) -> tuple[Opened | None, dict[int, BinaryIO | None]]:
    """Open on jobs processes (_parallel_open.py). When a part's file is not
    a regular one, returns None and the files the sink gave."""
    d = age.Decryptor(c.age_stream(), [identity.pq, identity.x25519])
    p = d.random_access(c.src.fileno(), c.age_offset, c.age_offset + c.age_length)
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
    # The stanza types age writes for each kind of recipient (SPEC.md 1).
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


def inspect(source: Source) -> Inspection:
    """What a carrier sees without keys. Never decrypts."""
    with loaded(source) as c:
        header = age.parse_header(c.age_stream())
        return Inspection(
            c.envelope_id(),
            c.size,
            c.bare,
            None if c.bare else container.VERSION,
            len(header.stanzas),
            tuple(s.type for s in header.stanzas),
            tuple(c.records),
            c.torn,
        )
