"""ASCII armor for age files (C2SP age spec, "ASCII armor").

Strict PEM (RFC 7468, section 3, figure 3) with the label
"AGE ENCRYPTED FILE": padded base64 in lines of exactly 64 columns but the
last, no PEM headers, LF or CRLF line ends, and nothing around the block but
a little whitespace. The spec notes that armor is malleable unless the
parser is this strict, so it is.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import BinaryIO

from .._io import PieceReader, read_full
from ..errors import ArmorError

AGE_LABEL = "AGE ENCRYPTED FILE"
HEADER = b"-----BEGIN AGE ENCRYPTED FILE-----"
COLUMNS_PER_LINE = 64
BYTES_PER_LINE = COLUMNS_PER_LINE // 4 * 3
# Whitespace accepted around the block, as the age reference does.
MAX_WHITESPACE = 1024
_WHITESPACE = b" \t\n\r\x0b\x0c"


def is_armored(prefix: bytes) -> bool:
    """Whether a file starting with prefix (at least the first 1,058 bytes,
    or all of it) is to be read as armor.

    age's CLI looks for the exact BEGIN line after whitespace. pouch takes
    any "-----" there: a binary age file starts with "age-encryption.org/",
    so nothing is lost, and a damaged BEGIN line ("-----begin age...", a
    wrong label) is then reported as bad armor, not as a bad header.
    """
    return prefix.lstrip(_WHITESPACE).startswith(b"-----")


PEEK_SIZE = MAX_WHITESPACE + len(HEADER)


def _lines(label: str) -> tuple[bytes, bytes]:
    return f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()


class ArmoredWriter:
    """Writes data as armor to dst; close() writes the footer (dst stays open).

    The label is age's by default; the same strict armor serves pouch's
    containers with their own label (SPEC.md 4.3).
    """

    def __init__(self, dst: BinaryIO, label: str = AGE_LABEL) -> None:
        self._dst = dst
        self._pending = bytearray()
        self._closed = False
        self._header, self._footer = _lines(label)
        dst.write(self._header + b"\n")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ArmoredWriter")
        self._pending += data
        full = len(self._pending) // BYTES_PER_LINE * BYTES_PER_LINE
        if full:
            self._dst.write(_encode_lines(self._pending[:full]))
            del self._pending[:full]
        return len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pending:
            self._dst.write(_encode_lines(self._pending))
        self._dst.write(self._footer + b"\n")

    def __enter__(self) -> ArmoredWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _encode_lines(data: bytes | bytearray) -> bytes:
    b64 = base64.b64encode(data)
    return b"".join(
        b64[i : i + COLUMNS_PER_LINE] + b"\n" for i in range(0, len(b64), COLUMNS_PER_LINE)
    )


def armor(data: bytes, label: str = AGE_LABEL) -> bytes:
    """The armored form of data, in one piece."""
    out = io.BytesIO()
    with ArmoredWriter(out, label) as w:
        w.write(data)
    return out.getvalue()


class ArmoredReader(PieceReader):
    """Decodes armor read from src, line by line, in constant memory."""

    def __init__(self, src: BinaryIO, label: str = AGE_LABEL) -> None:
        super().__init__()
        self._src = src
        self._started = False
        self._header, self._footer = _lines(label)

    def _line(self) -> bytes:
        line = self._src.readline(MAX_WHITESPACE + 2)
        if not line:
            raise ArmorError("invalid armor: the file ends before the END line")
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _next(self) -> bytes:
        skipped = 0
        while not self._started:
            line = self._line()
            if not line.strip(_WHITESPACE):
                skipped += len(line) + 1
                if skipped > MAX_WHITESPACE:
                    raise ArmorError("invalid armor: too much leading whitespace")
                continue
            if line != self._header:
                raise ArmorError(f"invalid armor: unexpected first line {line[:80]!r}")
            self._started = True
        line = self._line()
        if line == self._footer:
            self._end()
            return b""
        if not line:
            raise ArmorError("invalid armor: empty line inside the armored data")
        if len(line) > COLUMNS_PER_LINE:
            raise ArmorError("invalid armor: line longer than 64 columns")
        try:
            data = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ArmorError(f"invalid armor: bad base64 line {line[:80]!r}") from None
        # Strict decoding: the re-encoding must give the same line (no
        # non-zero padding bits, no other spelling of the same bytes).
        if base64.b64encode(data) != line:
            raise ArmorError(f"invalid armor: non-canonical base64 line {line[:80]!r}")
        if len(data) < BYTES_PER_LINE:
            # Only the last line may be short; the END line must follow.
            closing = self._line()
            if closing != self._footer:
                raise ArmorError(f"invalid armor: expected the END line, got {closing[:80]!r}")
            self._end()
        return data

    def _end(self) -> None:
        # What follows the END line is checked now, but reported on the next
        # read, after the last decoded bytes were returned.
        self._done = True
        rest = read_full(self._src, MAX_WHITESPACE)
        if rest.strip(_WHITESPACE):
            self._error = ArmorError("invalid armor: data after the END line")
        elif len(rest) == MAX_WHITESPACE:
            self._error = ArmorError("invalid armor: too much whitespace after the END line")
