"""Canonical JSON and DSSE statements (SPEC.md sections 0 and 3)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pouch import _canonical, statements
from pouch._fields import b64
from pouch.errors import StatementError

from .conftest import det_rand

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_canonical_json_round_trips(obj: object) -> None:
    data = _canonical.dumps(obj)
    assert _canonical.loads(data) == obj
    assert _canonical.dumps(_canonical.loads(data)) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate key"),
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a": 1}', "canonical"),
        (b'{"a":1.5}', "floats"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":9007199254740993}', "out of range"),
        (b'{"a":"\\u00e9"}', "canonical"),
        (b"\xff", "UTF-8"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_canonical_json_refuses(text: bytes, message: str) -> None:
    with pytest.raises(_canonical.CanonicalError, match=message):
        _canonical.loads(text)


def test_pae_is_dsse_v1() -> None:
    # DSSE protocol v1.0.0: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
    assert statements.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def _key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(det_rand(seed)(32))


ALICE, BOB, EVE = _key(b"alice"), _key(b"bob"), _key(b"eve")


def _pub(k: Ed25519PrivateKey) -> bytes:
    return k.public_key().public_bytes_raw()


def _payload() -> dict[str, object]:
    return {
        "v": 1,
        "signers": [b64(_pub(ALICE)), b64(_pub(BOB))],
        "text": "Singapore, 12 June",
    }


def _signers(p: dict[str, object]) -> list[bytes]:
    return [base64.b64decode(s) for s in p["signers"]]  # type: ignore[attr-defined]


def test_exactly_the_named_keys_must_sign() -> None:
    env = statements.sign("note", _payload(), [("a", ALICE), ("b", BOB)])
    decoded = statements.decode(env.encode())
    assert statements.verify(decoded, "note", 1, _signers) == _payload()
    # the order of signatures does not matter, keyids are not trusted
    swapped = statements.Envelope(
        env.payload_type,
        env.payload,
        (("bogus", env.signatures[1][1]), ("x", env.signatures[0][1])),
    )
    assert statements.verify(swapped, "note", 1, _signers) == _payload()


@pytest.mark.parametrize(
    ("signers", "message"),
    [
        ([("a", ALICE)], "missing or invalid"),
        ([("a", ALICE), ("e", EVE)], "missing or invalid"),
        ([("a", ALICE), ("b", BOB), ("e", EVE)], "does not name"),
        ([("a", ALICE), ("a", ALICE), ("b", BOB)], "does not name"),
    ],
)
def test_wrong_signers_are_refused(signers: list, message: str) -> None:
    env = statements.sign("note", _payload(), signers)
    with pytest.raises(StatementError, match=message):
        statements.verify(statements.decode(env.encode()), "note", 1, _signers)


def test_the_type_is_checked_before_the_payload_is_parsed() -> None:
    env = statements.sign("note", _payload(), [("a", ALICE), ("b", BOB)])
    hostile = statements.Envelope(env.payload_type, b"{not json", env.signatures)
    with pytest.raises(StatementError, match="expected a card statement"):
        statements.verify(hostile, "card", 1, _signers)


def test_tampered_payload_and_version() -> None:
    env = statements.sign("note", _payload(), [("a", ALICE), ("b", BOB)])
    changed = json.loads(env.payload)
    changed["text"] = "Hanoi"
    forged = statements.Envelope(env.payload_type, _canonical.dumps(changed), env.signatures)
    with pytest.raises(StatementError, match="missing or invalid"):
        statements.verify(forged, "note", 1, _signers)
    with pytest.raises(StatementError, match="version"):
        statements.verify(env, "note", 2, _signers)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "extra": 1},
        lambda d: {k: v for k, v in d.items() if k != "signatures"},
        lambda d: {**d, "signatures": []},
        lambda d: {**d, "payload": d["payload"][:-1]},
        lambda d: {**d, "signatures": [{"keyid": "a", "sig": "!!"}]},
    ],
)
def test_malformed_envelopes(mutate) -> None:  # type: ignore[no-untyped-def]
    env = statements.sign("note", _payload(), [("a", ALICE), ("b", BOB)])
    doc = mutate(json.loads(env.encode()))
    with pytest.raises(StatementError, match="malformed statement"):
        statements.decode(_canonical.dumps(doc))


def test_huge_integers_and_booleans_for_versions_are_refused() -> None:
    with pytest.raises(_canonical.CanonicalError):
        _canonical.loads(b'{"v":' + b"9" * 5000 + b"}")
    payload = {**_payload(), "v": True}
    env = statements.sign("note", payload, [("a", ALICE), ("b", BOB)])
    with pytest.raises(StatementError, match="version"):
        statements.verify(env, "note", 1, _signers)
