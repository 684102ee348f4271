"""Every C2SP CCTV age vector gives its expected result (143 of 143)."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from pouch.age import ScryptIdentity, decrypt_file, parse_identity

from .testkit import OUTCOMES, TESTKIT, load, run_vector, vectors


def test_the_testkit_is_complete() -> None:
    paths = vectors()
    assert len(paths) == 143, f"expected 143 vectors in {TESTKIT}, found {len(paths)}"
    counts = Counter(load(p).expect for p in paths)
    assert counts == {
        "success": 26,
        "header failure": 62,
        "armor failure": 22,
        "payload failure": 19,
        "no match": 13,
        "HMAC failure": 1,
    }


@pytest.mark.parametrize("path", vectors(), ids=lambda p: p.name)
def test_vector(path) -> None:
    v = load(path)
    assert not v.unknown, f"unknown keys {v.unknown}: the loader must learn them, not skip"
    identities = [parse_identity(s) for s in v.identities]
    identities += [ScryptIdentity(p) for p in v.passphrases]
    released = bytearray()
    outcome = run_vector(v.body, v.armored, identities, released)
    assert outcome == v.expect
    if v.expect in ("success", "payload failure"):
        assert hashlib.sha256(released).hexdigest() == v.payload
    else:
        assert not released


# Through decrypt_file, armor is detected as the CLI detects it: a file whose
# first non-blank bytes are "-----". One vector puts garbage before the BEGIN
# line, so it is not recognised as armor, and fails as a bad header instead.
DETECTION = {"armor_garbage_leading": "header failure"}


@pytest.mark.parametrize("path", vectors(), ids=lambda p: p.name)
def test_vector_through_decrypt_file(path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    v = load(path)
    identities = [parse_identity(s) for s in v.identities]
    identities += [ScryptIdentity(p) for p in v.passphrases]
    src = tmp_path / "in.age"
    src.write_bytes(v.body)
    out = tmp_path / "out"
    try:
        decrypt_file(src, out, identities)
        outcome = "success"
    except tuple(cls for cls, _ in OUTCOMES) as e:
        outcome = next(o for cls, o in OUTCOMES if isinstance(e, cls))
    assert outcome == DETECTION.get(v.name, v.expect)
    if outcome == "success":
        assert hashlib.sha256(out.read_bytes()).hexdigest() == v.payload
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.age"]
