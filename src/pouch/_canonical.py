"""Canonical JSON: the one spelling of every JSON document pouch signs.

SPEC.md section 0: keys sorted by code point, no insignificant white space,
UTF-8, strings escaped as Python's json module escapes them with
ensure_ascii=False, integers only (no floats, no NaN), no duplicate keys.
A reader re-encodes what it parsed and refuses anything that does not come
out byte for byte the same, so that a signed document has one encoding and
a parser cannot be fooled by a second one (duplicate keys, say).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import PouchError

# Integers beyond this are refused: JSON readers elsewhere lose precision.
MAX_INT = 2**53


class CanonicalError(PouchError):
    """Not canonical JSON. Callers re-raise it as their own format's error."""

    exit_code = 5


def dumps(obj: Any) -> bytes:
    _check_ints(obj)
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _check_ints(obj: Any) -> None:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, int):
        if not -MAX_INT < obj < MAX_INT:
            raise ValueError("integer out of range for canonical JSON")
    elif isinstance(obj, float):
        raise ValueError("floats are not allowed in canonical JSON")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError("object keys must be strings")
            _check_ints(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_ints(v)
    else:
        raise ValueError(f"cannot encode {type(obj).__name__} as canonical JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise CanonicalError(f"duplicate key {k[:40]!r}")
        out[k] = v
    return out


def _no_float(text: str) -> Any:
    raise CanonicalError("floats are not allowed")


def _no_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not allowed")


def loads(data: bytes) -> Any:
    """Parse canonical JSON; raise CanonicalError for anything else."""
    try:
        text = data.decode("utf-8")
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except UnicodeDecodeError:
        raise CanonicalError("not UTF-8") from None
    except (ValueError, RecursionError) as e:
        # JSONDecodeError is a ValueError; so is Python's limit on the
        # digits of an integer.
        raise CanonicalError(f"not JSON: {str(e)[:100]}") from None
    try:
        canonical = dumps(obj)
    except ValueError as e:
        raise CanonicalError(str(e)) from None
    if canonical != data:
        raise CanonicalError("not in canonical form")
    return obj
