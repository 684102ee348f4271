"""Bech32, recipient and identity strings, and the files that hold them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pouch.age import HybridIdentity, HybridRecipient, X25519Identity, X25519Recipient, bech32
from pouch.age.keys import (
    identity_file_text,
    parse_identities,
    parse_identity,
    parse_recipient,
    parse_recipients,
    read_identities_file,
    write_identity_file,
)
from pouch.errors import KeyFormatError, RefusedError

from .conftest import det_rand

HRP = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20).map(
    str.lower
)


@settings(max_examples=300, deadline=None)
@given(HRP, st.binary(max_size=1300))
def test_bech32_round_trip_without_length_limit(hrp: str, data: bytes) -> None:
    s = bech32.encode(hrp, data)
    assert bech32.decode(s) == (hrp, data)
    assert bech32.decode(s.upper()) == (hrp.upper(), data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.data())
def test_bech32_detects_any_single_character_change(data: bytes, draw: st.DataObject) -> None:
    s = bech32.encode("age", data)
    i = draw.draw(st.integers(len("age1"), len(s) - 1))
    c = draw.draw(st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l").filter(lambda c: c != s[i]))
    with pytest.raises(ValueError):
        bech32.decode(s[:i] + c + s[i + 1 :])


def test_bech32_rejects_mixed_case_and_bad_shapes() -> None:
    s = bech32.encode("age", bytes(32))
    with pytest.raises(ValueError, match="mixed case"):
        bech32.decode(s[:10] + s[10:].upper())
    for bad in ["", "age", "1qqqqqq", "age1", "age1b" + s[5:], "age1qqqqq"]:
        with pytest.raises(ValueError):
            bech32.decode(bad)


def test_key_strings_round_trip() -> None:
    x = X25519Identity.generate(det_rand(b"x"))
    assert str(x).startswith("AGE-SECRET-KEY-1") and str(x).isupper()
    assert str(x.recipient).startswith("age1") and len(str(x.recipient)) == 62
    assert str(parse_identity(str(x))) == str(x)
    assert parse_recipient(str(x.recipient)) == x.recipient
    assert isinstance(parse_recipient(str(x.recipient)), X25519Recipient)

    pq = HybridIdentity.generate(det_rand(b"pq"))
    assert str(pq).startswith("AGE-SECRET-KEY-PQ-1")
    assert str(pq.recipient).startswith("age1pq1")
    assert isinstance(parse_recipient(str(pq.recipient)), HybridRecipient)
    assert str(parse_identity(str(pq))) == str(pq)
    # the same seed gives the same key: the seed is the whole identity
    assert str(HybridIdentity.generate(det_rand(b"pq")).recipient) == str(pq.recipient)


def test_repr_never_shows_a_secret() -> None:
    for identity in (X25519Identity.generate(), HybridIdentity.generate()):
        assert str(identity) not in repr(identity)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssh-ed25519 AAAAC3Nz", "unsupported recipient"),
        ("AGE-SECRET-KEY-1QQQQ", "secret key, not a recipient"),
        ("age1qqqqqqqqqqqqqqq", "malformed recipient"),
        ("age1tag1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "malformed"),
        ("hello", "malformed recipient"),
    ],
)
def test_bad_recipients_are_named(text: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        parse_recipient(text)


def test_unknown_recipient_type() -> None:
    with pytest.raises(KeyFormatError, match="unknown recipient type 'age1foo'"):
        parse_recipient(bech32.encode("age1foo", bytes(8)))


def test_a_bad_secret_key_is_never_quoted() -> None:
    secret = str(X25519Identity.generate())
    broken = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    with pytest.raises(KeyFormatError) as e:
        parse_identity(broken)
    assert secret[16:40] not in str(e.value)
    with pytest.raises(KeyFormatError, match="line 3 is not a valid secret key") as e:
        parse_identities(f"# comment\n\n{broken}\n")
    assert secret[16:40] not in str(e.value)


def test_recipient_lists() -> None:
    a, b = X25519Identity.generate(), HybridIdentity.generate()
    text = f"# desk of the president\n{a.recipient}\n\n{b.recipient}\r\n"
    assert parse_recipients(text) == [a.recipient, b.recipient]
    with pytest.raises(KeyFormatError, match="no recipients found"):
        parse_recipients("# nothing\n")
    with pytest.raises(KeyFormatError, match="line 2"):
        parse_recipients(f"{a.recipient}\nnonsense\n")


def test_identity_files_must_be_private(tmp_path: Path) -> None:
    identity = X25519Identity.generate()
    path = tmp_path / "key.txt"
    write_identity_file(path, identity_file_text(identity, _now()))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [str(i) for i in read_identities_file(path)] == [str(identity)]
    path.chmod(0o640)
    with pytest.raises(RefusedError, match="others can read it") as e:
        read_identities_file(path)
    assert e.value.hints == (f"make it private first: chmod 600 {path}",)


def test_identity_files_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("precious\n")
    with pytest.raises(RefusedError, match="already exists"):
        write_identity_file(path, "new")
    assert path.read_text() == "precious\n"


def test_identity_file_text_is_as_age_keygen_writes_it() -> None:
    identity = X25519Identity.generate(det_rand(b"k"))
    lines = identity_file_text(identity, _now()).splitlines()
    assert lines[0] == "# created: 2019-01-14T21:00:00-05:00"
    assert lines[1] == f"# public key: {identity.recipient}"
    assert lines[2] == str(identity)


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    return datetime(2019, 1, 14, 21, 0, tzinfo=timezone(timedelta(hours=-5)))


def test_low_order_recipients_are_refused() -> None:
    with pytest.raises(KeyFormatError, match="low-order"):
        X25519Recipient(bytes(32))
    mlkem = HybridIdentity.generate().recipient.public_bytes[:1184]
    text = bech32.encode("age1pq", mlkem + bytes(32))
    with pytest.raises(KeyFormatError, match="low-order X25519"):
        parse_recipient(text)
