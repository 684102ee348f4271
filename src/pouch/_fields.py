"""Field readers: the one spelling of each rule pouch's formats share
(SPEC.md section 0).

Ids and fingerprints are 64 lowercase hex digits (a BLAKE3 digest), stream
ids 32; times are RFC 3339 in UTC to the second (2018-05-24T09:00:00Z), one
format, fixed width, so that they compare as strings; integers are JSON
integers, never booleans, within bounds; binary fields are canonical
padded base64. Every format opens with a canonical JSON object of known
fields (read_object). Each reader is a predicate, so that the format that
calls it says, in its own words, what was malformed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Set
from datetime import UTC, datetime
from typing import Any, TypeGuard

from . import _canonical
from .errors import PouchError

_HEX = frozenset("0123456789abcdef")
# A prefix of an id or fingerprint names one only from this many digits on.
MIN_PREFIX = 8
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def is_hex(value: object, size: int) -> TypeGuard[str]:
    """size lowercase hex digits."""
    return isinstance(value, str) and len(value) == size and _HEX.issuperset(value)


def is_hex64(value: object) -> TypeGuard[str]:
    """A BLAKE3 digest as pouch writes it: a letter, envelope or statement
    id, a fingerprint."""
    return is_hex(value, 64)


def is_stream_id(value: object) -> TypeGuard[str]:
    return is_hex(value, 32)


def is_prefix(value: str) -> bool:
    """Whether value may name an id or fingerprint by its first digits."""
    return len(value) >= MIN_PREFIX and _HEX.issuperset(value)


def is_int(value: object) -> TypeGuard[int]:
    """An integer, not a boolean (in Python, True == 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_int_in(value: object, low: int, high: int) -> TypeGuard[int]:
    return is_int(value) and low <= value <= high


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime(TIME_FORMAT)


def is_rfc3339(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    try:
        return rfc3339(datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)) == value
    except ValueError:
        return False


def is_text(value: object, limit: int) -> TypeGuard[str]:
    """1 to limit printable characters: what a person typed (a place, a
    note) and every carrier will show."""
    return isinstance(value, str) and 1 <= len(value) <= limit and value.isprintable()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str, error: type[PouchError]) -> bytes:
    """Strict standard base64: padded and canonical, so that one value has
    one encoding."""
    if not isinstance(text, str):
        raise error(f"malformed statement: {what} is not a string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"malformed statement: {what} is not base64") from None
    if b64(data) != text:
        raise error(f"malformed statement: {what} is not canonical base64")
    return data


def read_object(
    data: bytes,
    what: str,
    error: type[PouchError],
    fields: Set[str],
    optional: Set[str] = frozenset(),
) -> dict[str, Any]:
    """A canonical JSON object with every one of fields, and perhaps some of
    optional, and nothing else; error("malformed {what}: ...") otherwise."""
    try:
        obj = _canonical.loads(data)
    except _canonical.CanonicalError as e:
        raise error(f"malformed {what}: {e.message}") from None
    if not isinstance(obj, dict) or not fields <= obj.keys() <= fields | optional:
        raise error(f"malformed {what}: unexpected fields")
    return obj
