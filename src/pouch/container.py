"""The .pouch container: what a courier carries (SPEC.md section 4).

    container = header (20 bytes) || age ciphertext || trailer
    header    = magic(8) || version(1) || flags(1) = 0 || reserved(2) = 0
                || uint64 length of the age ciphertext
    trailer   = record*
    record    = uint32 body length || uint16 type || body
                || uint32 CRC-32 of (length || type || body)

A custody receipt (SPEC.md section 4.1) is the same record stream after a
header that names the envelope instead of holding it.

The ciphertext is never rewritten: statements (custody, SPEC.md 3.7 to
3.9) are appended as records, under a file lock and with fsync. A torn last record
(a crash during an append) is detected and ignored; a damaged record with
records after it is an error. The envelope id is BLAKE3 of the age
ciphertext, so `b3sum` of the extracted age file gives it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import blake3

from ._cores import pwrite
from ._io import read_full, room_hint
from ._pipeline import BufferRing
from .age import armor as _armor
from .errors import ContainerError, FileError

MAGIC = b"\x89POUCH\r\n"  # \x89 and CRLF catch 7-bit and text-mode mangling
VERSION = 1
HEADER = struct.Struct(">8sBBHQ")
RECEIPT_MAGIC = b"\x89PRCPT\r\n"
RECEIPT_HEADER = struct.Struct(">8sBBH32s")  # magic, version, flags, reserved, envelope id
RECORD_HEAD = struct.Struct(">IH")
CRC = struct.Struct(">I")
ARMOR_LABEL = "POUCH CONTAINER"
# A record holds a statement or two; larger is damage or an attack.
MAX_RECORD = 1 << 20
AGE_INTRO = b"age-encryption.org/"


@dataclass(frozen=True)
class Record:
    """A record to append."""

    type: int
    body: bytes


@dataclass(frozen=True)
class RecordRef:
    """A record found in a trailer: where its body lies (bodies are read on
    demand, so that a long trailer costs no memory)."""

    type: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length + CRC.size


def short_id(envelope: str) -> str:
    """The short form, like a git hash."""
    return envelope[:12]


def header(age_length: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, 0, 0, age_length)


def encode_record(record: Record) -> bytes:
    head = RECORD_HEAD.pack(len(record.body), record.type)
    return head + record.body + CRC.pack(zlib.crc32(head + record.body))


@dataclass
class Container:
    """A parsed container: where its ciphertext lies, and its records.

    A Container is a context manager: leaving it closes the file that
    load() opened (a path given, or the decoding of armor), never a file
    the caller handed it.
    """

    src: BinaryIO
    age_offset: int
    age_length: int
    records: list[RecordRef]
    torn: bool  # a torn last record was found and ignored
    bare: bool  # a bare age file, no container around it
    detached: str | None = None  # a custody receipt: the envelope id it names, no ciphertext
    armored: bool = False  # decoded from its text form: src is the decoding, not the file
    path: str | None = None  # where load() opened it
    _owned: BinaryIO | None = field(default=None, repr=False)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    @property
    def size(self) -> int:
        return self.src.seek(0, os.SEEK_END)

    def age_stream(self, tap: Tap | None = None) -> BinaryIO:
        """The age ciphertext alone, as a buffered stream (1 MiB reads).

        tap, if given, receives every block read, in order (a hash of the
        ciphertext, taken on the way). It may hand the block to a worker and
        return the future: the block's buffer is reused only when it is done.
        """
        if self.detached is not None:
            raise ContainerError(
                "this is a custody receipt: it names a pouch but does not hold its letter",
                "'pouch custody' or 'pouch receipt' reads it",
            )
        self.src.seek(self.age_offset)
        window = _Window(self.src, self.age_length, tap)
        return cast(BinaryIO, io.BufferedReader(window, buffer_size=1 << 20))

    @property
    def trailer_end(self) -> int:
        """Where the last good record ends (a torn one starts there)."""
        return self.records[-1].end if self.records else self.age_offset + self.age_length

    def read_record(self, ref: RecordRef) -> Record:
        self.src.seek(ref.offset)
        return Record(ref.type, read_full(self.src, ref.length))

    def envelope_id(self) -> str:
        h = blake3.blake3()
        stream = self.age_stream()
        while chunk := stream.read(1 << 20):
            h.update(chunk)
        return h.hexdigest()

    def append(self, *records: Record) -> None:
        """Append records to the very file this container read, durably
        (one fsync), under a lock.

        Write access is asked for only now, through the open file rather
        than its path (so that it is this file whatever its name points to
        since). The trailer is read again under the lock, so that the
        records follow the last good one, whoever appended since: a torn
        last record left by an earlier crash is cut off first.
        """
        name = self.path or "this file"
        if self.bare:
            raise ContainerError(f"{name} is a bare age file: it has no trailer")
        if self.armored:
            raise ContainerError(f"{name} is armored: records go into the binary .pouch")
        if self.detached is not None:
            raise ContainerError(f"{name} is a custody receipt: it holds no pouch to carry")
        data = b"".join(encode_record(r) for r in records)
        try:
            fd = os.open(f"/proc/self/fd/{self.src.fileno()}", os.O_RDWR)
        except OSError as e:
            raise FileError(
                f"cannot open {name}: {e.strerror}; nothing was appended",
                *room_hint(e.errno),
                errno=e.errno,
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "rb") as f:
                size = f.seek(0, os.SEEK_END)
                self.records, _ = _read_records(f, self.age_offset + self.age_length, size)
            end = self.trailer_end
            os.ftruncate(fd, end)
            try:
                pwrite(fd, memoryview(data), end)
                os.fsync(fd)
            except OSError:
                # A full disk takes part of a record: cut it off again.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, end)
                raise
        except OSError as e:
            raise FileError(
                f"cannot append to {name}: {e.strerror}; nothing was appended",
                *room_hint(e.errno),
                errno=e.errno,
            ) from None
        finally:
            os.close(fd)  # and the lock with it
        self.src.seek(0)  # what was read ahead is stale
        for r in records:
            self.records.append(RecordRef(r.type, end + RECORD_HEAD.size, len(r.body)))
            end = self.records[-1].end
        self.torn = False


Tap = Callable[[memoryview], "Future[Any] | None"]


class _Window(io.RawIOBase):
    """length bytes of src from where it stands."""

    def __init__(self, src: BinaryIO, length: int, tap: Tap | None = None) -> None:
        super().__init__()
        self._src, self._left, self._tap = src, length, tap
        self._ring = BufferRing(4, 1 << 20) if tap is not None else None

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b)[: min(len(b), self._left)]
        n = (self._src.readinto(view) if view else 0) or 0  # type: ignore[attr-defined]
        self._left -= n
        if self._tap is not None and self._ring is not None and n:
            # The tap gets its own copy: b is the reader's to reuse at once.
            for start in range(0, n, 1 << 20):
                piece = view[start : min(n, start + (1 << 20))]
                buf = self._ring.take()
                buf[: len(piece)] = piece
                self._ring.give(buf, self._tap(memoryview(buf)[: len(piece)]))
        return n


def parse(src: BinaryIO) -> Container:
    """Parse a container from a seekable binary file.

    A bare age file (binary) is a container without a trailer. Armored input
    is decoded by load(), not here.
    """
    head = read_full(src, HEADER.size)
    if head.startswith(RECEIPT_MAGIC):
        return _parse_receipt(src)
    if head.startswith(AGE_INTRO):
        size = src.seek(0, os.SEEK_END)
        return Container(src, 0, size, [], False, True)
    if len(head) < HEADER.size or not head.startswith(MAGIC):
        raise ContainerError("not a pouch container or age file", "is this the right file?")
    _, version, flags, reserved, age_length = HEADER.unpack(head)
    _check_head("container format", "container", version, flags, reserved)
    size = src.seek(0, os.SEEK_END)
    if HEADER.size + age_length > size:
        raise ContainerError("container truncated: the ciphertext is cut short")
    records, torn = _read_records(src, HEADER.size + age_length, size)
    return Container(src, HEADER.size, age_length, records, torn, False)


def _check_head(format_: str, what: str, version: int, flags: int, reserved: int) -> None:
    """The version, flags and reserved bits the container and the custody
    receipt share."""
    if version != VERSION:
        raise ContainerError(
            f"{format_} version {version} is not supported (this pouch reads {VERSION})",
            "a newer pouch may read it",
        )
    if flags or reserved:
        raise ContainerError(f"malformed {what}: reserved header bits are set")


def _parse_receipt(src: BinaryIO) -> Container:
    src.seek(0)
    head = read_full(src, RECEIPT_HEADER.size)
    if len(head) < RECEIPT_HEADER.size:
        raise ContainerError("custody receipt truncated: its header is cut short")
    _, version, flags, reserved, envelope = RECEIPT_HEADER.unpack(head)
    _check_head("custody receipt", "custody receipt", version, flags, reserved)
    size = src.seek(0, os.SEEK_END)
    records, torn = _read_records(src, RECEIPT_HEADER.size, size)
    if torn:
        # A receipt is written whole, then renamed: a torn one is damage.
        raise ContainerError("damaged custody receipt: its last record is cut short")
    return Container(src, RECEIPT_HEADER.size, 0, records, False, False, envelope.hex())


def custody_receipt(envelope: str, records: Sequence[Record]) -> bytes:
    """A custody receipt: the records of a pouch's trailer (its chain up to
    the acceptance that delivered it), after a header naming its envelope."""
    head = RECEIPT_HEADER.pack(RECEIPT_MAGIC, VERSION, 0, 0, bytes.fromhex(envelope))
    return head + b"".join(encode_record(r) for r in records)


def _read_records(src: BinaryIO, pos: int, size: int) -> tuple[list[RecordRef], bool]:
    """Every record's place, each checked against its CRC, in constant
    memory. A last record that runs past the end, or is complete by its
    length but fails its CRC, is torn; a bad record with more after it, or
    one too large, is damage."""
    src.seek(pos)
    records: list[RecordRef] = []
    while pos < size:
        head = read_full(src, RECORD_HEAD.size)
        if len(head) < RECORD_HEAD.size:
            return records, True  # torn in the length prefix
        length, rtype = RECORD_HEAD.unpack(head)
        end = pos + RECORD_HEAD.size + length + CRC.size
        if end > size:
            return records, True  # torn: the record runs past the end
        if length > MAX_RECORD:
            raise ContainerError("malformed container: a trailer record is too large")
        crc = zlib.crc32(head)
        left = length
        while left:
            piece = read_full(src, min(left, 1 << 16))
            crc = zlib.crc32(piece, crc)
            left -= len(piece)
        if CRC.unpack(read_full(src, CRC.size))[0] != crc:
            if end == size:
                return records, True  # torn: the last record is incomplete
            raise ContainerError(
                f"damaged container: trailer record {len(records) + 1} fails its checksum"
            )
        records.append(RecordRef(rtype, pos + RECORD_HEAD.size, length))
        pos = end
    return records, False


def load(source: str | os.PathLike[str] | BinaryIO) -> Container:
    """Open a container: a path or a seekable binary file; binary, armored,
    or a bare age file. Use it as a context manager.

    A path is opened here, for reading (Container.append asks for write
    access when it appends), and closed when the container is. Armor is
    decoded into an unnamed temporary file (ciphertext only, never
    plaintext), so that a large armored file costs no memory.
    """
    if not isinstance(source, (str, os.PathLike)):
        return _load(source)
    try:
        f: BinaryIO = open(source, "rb")
    except OSError as e:
        raise FileError(f"cannot read {source}: {e.strerror}") from None
    try:
        c = _load(f)
    except BaseException:
        f.close()
        raise
    if c.armored:
        f.close()  # the container reads its decoding
    else:
        c._owned = f
    c.path = os.fspath(source)
    return c


Source = Container | str | os.PathLike[str] | BinaryIO


@contextlib.contextmanager
def loaded(source: Source) -> Iterator[Container]:
    """source as a container: one given is the caller's to close; one
    loaded here (from a path or a file) is closed on the way out."""
    if isinstance(source, Container):
        yield source
        return
    with load(source) as c:
        yield c


def _load(f: BinaryIO) -> Container:
    prefix = f.read(_armor.PEEK_SIZE)
    f.seek(0)
    if not _armor.is_armored(prefix):
        return parse(f)
    ours = b"-----BEGIN " + ARMOR_LABEL.encode() + b"-----"
    label = ARMOR_LABEL if ours in prefix else _armor.AGE_LABEL
    decoded = cast(BinaryIO, tempfile.TemporaryFile())
    try:
        reader = io.BufferedReader(_armor.ArmoredReader(f, label))
        while chunk := reader.read(1 << 20):
            decoded.write(chunk)
        decoded.seek(0)
        c = parse(decoded)
    except BaseException:
        decoded.close()
        raise
    c._owned, c.armored = decoded, True
    return c
