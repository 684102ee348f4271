"""Sealing a letter (SPEC.md sections 2.1 to 2.3): the signed letter,
encrypted with the age engine to every recipient, in a container.

This thread encrypts (pyca's AEAD holds the GIL) while workers hash the
segments, write the ciphertext and hash it for the envelope id. When every
part is a regular file and the output one too, _parallel_seal.py seals on
every core instead, with the same bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Literal

import blake3

from .. import _cores, age, container
from .._fields import rfc3339
from .._pipeline import Worker
from ..errors import UsageError
from ..identity import Card, Identity
from . import _parallel_seal
from ._format import CLASSIC, PQ, Kem, LetterHeader, LetterKind, envelope_binding
from ._segments import LetterWriter
from .order import Block, seal_blocks

Rand = Callable[[int], bytes]
# What a sender may ask of the age recipients (None: post-quantum whenever
# every recipient has a post-quantum key).
KemChoice = Literal["pq", "classic"]


@dataclass(frozen=True)
class Sealed:
    letter_id: str
    envelope_id: str
    kem: Kem
    decoys: int
    size: int
    block_keys: dict[str, bytes]  # each recipient's order block key (for transcripts)


def choose_kem(recipients: Sequence[Card], want: KemChoice | None) -> Kem:
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


def _decoys(count: int, kem: Kem, rand: Rand) -> list[age.Recipient]:
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
    kem: KemChoice | None = None,
    pad: bool = False,
    stream: str,
    order: Mapping[str, Block],
    now: datetime | None = None,
    rand: Rand = os.urandom,
    jobs: int | None = None,
    kind: LetterKind = "letter",
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
    jobs = jobs or _cores.default_jobs()
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
