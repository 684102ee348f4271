"""Loader and runner for the C2SP age conformance vectors in
../shared/age-testkit (and for pouch's own vectors in their format).

The vectors are read where they lie (never copied into the repository).
Each file is "key: value" lines, a blank line, then an age file, possibly
zlib-compressed (see the README beside them).
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pouch.age import Decryptor
from pouch.age.armor import ArmoredReader
from pouch.errors import (
    ArmorError,
    HeaderError,
    HeaderMacError,
    NoIdentityMatchError,
    PayloadError,
)

# ../shared/age-testkit beside the repository; AGE_TESTKIT overrides it.
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "age-testkit"
TESTKIT = Path(os.environ.get("AGE_TESTKIT") or _BESIDE) / "testdata"

KNOWN_KEYS = {
    "expect",
    "payload",
    "identity",
    "passphrase",
    "armored",
    "compressed",
    "file key",
    "comment",
}


@dataclass
class Vector:
    name: str
    expect: str
    body: bytes
    payload: str | None = None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    unknown: list[str] = field(default_factory=list)


def load(path: Path) -> Vector:
    data = path.read_bytes()
    head, _, body = data.partition(b"\n\n")
    v = Vector(name=path.name, expect="", body=body)
    compressed = False
    for line in head.decode().split("\n"):
        key, _, value = line.partition(": ")
        if key == "expect":
            v.expect = value
        elif key == "payload":
            v.payload = value
        elif key == "identity":
            v.identities.append(value)
        elif key == "passphrase":
            v.passphrases.append(value)
        elif key == "armored":
            v.armored = value == "yes"
        elif key == "compressed":
            assert value == "zlib", value
            compressed = True
        elif key not in KNOWN_KEYS:
            v.unknown.append(key)
    if compressed:
        v.body = zlib.decompress(v.body)
    return v


def vectors() -> list[Path]:
    if not TESTKIT.is_dir():
        # A missing testkit is a failure, never a silent skip.
        raise FileNotFoundError(
            f"the age testkit is not at {TESTKIT}: clone pouch beside ../shared, "
            "or point AGE_TESTKIT at the age-testkit folder"
        )
    return sorted(TESTKIT.iterdir())


# What a vector expects, by the error that gives it.
OUTCOMES: list[tuple[type[Exception], str]] = [
    (ArmorError, "armor failure"),
    (NoIdentityMatchError, "no match"),
    (HeaderMacError, "HMAC failure"),
    (HeaderError, "header failure"),
    (PayloadError, "payload failure"),
]


def run_vector(body: bytes, armored: bool, identities: list, released: bytearray) -> str:
    src: io.BufferedIOBase = io.BytesIO(body)
    if armored:
        src = io.BufferedReader(ArmoredReader(src))  # type: ignore[arg-type]
    try:
        reader = Decryptor(src, identities).reader()  # type: ignore[arg-type]
        while chunk := reader.read(65536):
            released += chunk
    except tuple(cls for cls, _ in OUTCOMES) as e:
        for cls, outcome in OUTCOMES:
            if isinstance(e, cls):
                return outcome
    return "success"
