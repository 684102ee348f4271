"""The age v1 header: parsing and serialisation (C2SP age spec, section "Header").

Spec: https://c2sp.org/age (v1.1.0), "Encrypted file format".

The parser is strict: anything the ABNF does not allow is a HeaderError, so
that one header has exactly one encoding and parse-then-serialise gives back
the input byte for byte (tests/test_age_format.py checks it).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import HeaderError

INTRO = b"age-encryption.org/v1\n"
VERSION_PREFIX = b"age-encryption.org/"
STANZA_PREFIX = b"-> "
FOOTER_PREFIX = b"---"

# "a base64-encoded body wrapped at 64 columns": 64 characters hold 48 bytes.
COLUMNS_PER_LINE = 64
BYTES_PER_LINE = COLUMNS_PER_LINE // 4 * 3

# The spec sets no limit; these keep a hostile header from taking memory out
# of proportion to what an honest one needs. A post-quantum stanza's argument
# line is about 1.5 KB; a header with thousands of decoy stanzas stays far
# below the total.
MAX_LINE = 64 * 1024
MAX_HEADER = 16 * 1024 * 1024
# Each parsed stanza costs a few hundred bytes of objects and every identity
# tries each one: far more than any real file has (pouch's decoys included).
MAX_STANZAS = 10_000

_B64_CHARS = re.compile(rb"[A-Za-z0-9+/]*")


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, as the header uses it."""
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(s: str | bytes) -> bytes:
    """Decode canonical unpadded base64, rejecting everything else.

    Spec: "decoders MUST reject non-canonical encodings and encodings ending
    with = padding characters". Non-canonical means non-zero trailing bits;
    re-encoding and comparing catches exactly those.
    """
    raw = s.encode("ascii", "replace") if isinstance(s, str) else s
    if not _B64_CHARS.fullmatch(raw) or len(raw) % 4 == 1:
        raise ValueError("invalid base64")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as e:
        raise ValueError("invalid base64") from e
    if b64encode(data).encode("ascii") != raw:
        raise ValueError("non-canonical base64")
    return data


def b64decode_exact(arg: str | bytes, size: int) -> bytes | None:
    """arg decoded if it is the canonical base64 of exactly size bytes, else
    None: how every native stanza checks its binary arguments."""
    try:
        data = b64decode(arg)
    except ValueError:
        return None
    return data if len(data) == size else None


_VCHARS = re.compile(r"[\x21-\x7e]+")


def _is_argument(a: str) -> bool:
    # argument = 1*VCHAR: printable ASCII, no space.
    return _VCHARS.fullmatch(a) is not None


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: a type, its arguments and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def __post_init__(self) -> None:
        for a in (self.type, *self.args):
            if not _is_argument(a):
                raise ValueError(f"invalid stanza argument {a!r}")

    def marshal(self) -> bytes:
        out = [STANZA_PREFIX, " ".join((self.type, *self.args)).encode("ascii"), b"\n"]
        body = b64encode(self.body).encode("ascii")
        # A stanza body always ends with a short line, which may be empty: it
        # is how a reader knows the body is over.
        for i in range(0, len(body) + 1, COLUMNS_PER_LINE):
            out += [body[i : i + COLUMNS_PER_LINE], b"\n"]
        return b"".join(out)


@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas and MAC."""

    stanzas: tuple[Stanza, ...]
    mac: bytes

    def mac_input(self) -> bytes:
        """The bytes the MAC covers: everything up to and including "---"."""
        return mac_input(self.stanzas)

    def marshal(self) -> bytes:
        return self.mac_input() + b" " + b64encode(self.mac).encode("ascii") + b"\n"


def mac_input(stanzas: tuple[Stanza, ...] | list[Stanza]) -> bytes:
    return INTRO + b"".join(s.marshal() for s in stanzas) + FOOTER_PREFIX


class _Lines:
    """Reads LF-terminated lines from a binary stream, within the limits."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.total = 0

    def next(self, what: str) -> bytes:
        line = self._src.readline(MAX_LINE + 1)
        self.total += len(line)
        if len(line) > MAX_LINE:
            raise HeaderError(f"malformed header: {what} is longer than {MAX_LINE} bytes")
        if self.total > MAX_HEADER:
            raise HeaderError(f"malformed header: longer than {MAX_HEADER} bytes")
        if not line.endswith(b"\n"):
            if not line and what == "version line":
                raise HeaderError("the file is empty", "is this the right file?")
            raise HeaderError(f"malformed header: file ends inside the {what}")
        return line


def _quote(line: bytes, limit: int = 80) -> str:
    text = repr(line[:limit])
    return text + ("..." if len(line) > limit else "")


def parse_header(src: BinaryIO) -> Header:
    """Read a header from src, leaving src positioned at the payload nonce.

    src must offer readline() that does not read past the newline (io's
    buffered readers, BytesIO and raw files all do).
    """
    lines = _Lines(src)
    line = lines.next("version line")
    if line != INTRO:
        if line.startswith(VERSION_PREFIX):
            version = line[len(VERSION_PREFIX) : -1]
            raise HeaderError(
                f"unsupported age format version {_quote(version)}",
                "this file needs a newer version of age or pouch",
            )
        raise HeaderError(
            "not an age file: the first line is not 'age-encryption.org/v1'",
            "is this the right file?",
        )
    stanzas: list[Stanza] = []
    while True:
        line = lines.next("header")
        if line.startswith(FOOTER_PREFIX):
            # header = v1-line 1*stanza end
            if not stanzas:
                raise HeaderError("malformed header: no recipient stanzas")
            return Header(tuple(stanzas), _parse_footer(line))
        if len(stanzas) == MAX_STANZAS:
            raise HeaderError(f"malformed header: more than {MAX_STANZAS} stanzas")
        stanzas.append(_parse_stanza(line, lines))


def _parse_footer(line: bytes) -> bytes:
    # end = "--- " 43base64char LF
    parts = line[:-1].split(b" ")
    if parts[0] != FOOTER_PREFIX or len(parts) != 2:
        raise HeaderError(f"malformed header: bad closing line {_quote(line)}")
    mac = b64decode_exact(parts[1], 32)
    if mac is None:
        raise HeaderError(f"malformed header: bad MAC in closing line {_quote(line)}")
    return mac


def _parse_stanza(line: bytes, lines: _Lines) -> Stanza:
    # arg-line = "-> " argument *(SP argument) LF
    if not line.startswith(STANZA_PREFIX):
        raise HeaderError(f"malformed header: expected a stanza, got {_quote(line)}")
    parts = line[:-1].split(b" ")
    args = [p.decode("ascii", "replace") for p in parts[1:]]
    if parts[0] != b"->" or not args or not all(_is_argument(a) for a in args):
        raise HeaderError(f"malformed header: bad stanza line {_quote(line)}")
    body = bytearray()
    while True:
        line = lines.next("stanza body")
        try:
            chunk = b64decode(line[:-1])
        except ValueError:
            if line.startswith((FOOTER_PREFIX, STANZA_PREFIX)):
                raise HeaderError(
                    "malformed header: stanza body does not end with a short line"
                ) from None
            raise HeaderError(f"malformed header: bad stanza body line {_quote(line)}") from None
        if len(chunk) > BYTES_PER_LINE:
            raise HeaderError("malformed header: stanza body line longer than 64 columns")
        body += chunk
        # full-line = 64base64char LF; final-line = *63base64char LF
        if len(chunk) < BYTES_PER_LINE:
            return Stanza(args[0], tuple(args[1:]), bytes(body))
