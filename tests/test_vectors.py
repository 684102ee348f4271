"""pouch's own age vectors (tests/vectors/age, SPEC.md section 1.4).

They are regenerated from fixed keys and the SPEC's test randomness and
must come out byte for byte; then they are checked like CCTV vectors, by
this engine and by the stock age CLI.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from pouch import container, letter
from pouch.age import ScryptIdentity, parse_identity
from pouch.custody import Credential, Revocation, Scope, judge, read_trailer
from pouch.identity import Card

from .conftest import run
from .testkit import load, run_vector
from .vectors.generate import (
    HERE,
    LETTERS,
    STATEMENTS,
    letter_vectors,
    statement_vectors,
    vector_identity,
    vectors,
)

GENERATED = dict(vectors())


def test_the_vector_files_are_the_generator_output() -> None:
    on_disk = {p.name: p.read_bytes() for p in HERE.iterdir()}
    assert on_disk.keys() == GENERATED.keys()
    for name, data in GENERATED.items():
        assert on_disk[name] == data, f"{name}: regenerate with python -m tests.vectors.generate"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_vector_opens(name: str) -> None:
    v = load(HERE / name)
    identities = [parse_identity(s) for s in v.identities]
    identities += [ScryptIdentity(p) for p in v.passphrases]  # type: ignore[misc]
    released = bytearray()
    assert run_vector(v.body, v.armored, identities, released) == v.expect == "success"
    assert hashlib.sha256(released).hexdigest() == v.payload


@pytest.mark.parametrize("name", sorted(n for n in GENERATED if not n.startswith("scrypt")))
def test_vector_opens_with_stock_age(age_cli: str, tmp_path: Path, name: str) -> None:
    v = load(HERE / name)
    key = tmp_path / "key"
    key.write_text("\n".join(v.identities) + "\n")
    r = run([age_cli, "-d", "-i", key], input=v.body)
    assert r.code == 0, r.err
    assert hashlib.sha256(r.out).hexdigest() == v.payload


def test_statement_vectors_are_the_generator_output() -> None:
    on_disk = {p.name: p.read_bytes() for p in STATEMENTS.iterdir()}
    generated = dict(statement_vectors())
    assert on_disk == generated, "regenerate with python -m tests.vectors.generate"
    for name in ("card_kim.json", "card_trump.json"):
        Card.from_bytes(on_disk[name].strip())
    kim = Card.from_bytes(on_disk["card_kim.json"].strip())
    trump = Card.from_bytes(on_disk["card_trump.json"].strip())
    credential = Credential.from_bytes(on_disk["credential_kim_chol.json"].strip())
    scope = Scope.from_bytes(on_disk["credential_kim_chol.scope.json"].strip())
    revocation = Revocation.from_bytes(on_disk["revocation_kim_chol.json"].strip())
    assert credential.principal == kim.signing_key and credential.role == "envoy"
    assert credential.allows(scope, trump.fingerprint)
    assert revocation.revokes(credential)
    # The custody receipt: its records are the handover and acceptance vectors.
    receipt = container.parse(io.BytesIO(on_disk["custody_kim_chol.receipt"]))
    trailer = read_trailer(receipt)
    handover, acceptance = trailer.records
    assert handover.statement.encode() + b"\n" == on_disk["handover_kim_chol.json"]
    assert acceptance.statement.encode() + b"\n" == on_disk["acceptance_kim_chol.json"]
    assert receipt.detached == handover.envelope and not trailer.problems
    verdict = judge(handover.envelope, trailer, {kim.signing_key})
    assert verdict.clean and verdict.chain.holder == credential.agent


def test_letter_vectors_are_the_generator_output_and_open() -> None:
    on_disk = {p.name: p.read_bytes() for p in LETTERS.iterdir()}
    assert on_disk == dict(letter_vectors()), "regenerate with python -m tests.vectors.generate"
    expected = json.loads(on_disk["trump_to_kim.json"])
    parts: dict[int, io.BytesIO] = {}

    def sink(i: int) -> io.BytesIO:
        parts[i] = io.BytesIO()
        return parts[i]

    opened = letter.open_letter(
        vector_identity(expected["opener"]), LETTERS / "trump_to_kim.pouch", sink
    )
    assert (opened.letter_id, opened.envelope_id) == (
        expected["letter_id"],
        expected["envelope_id"],
    )
    assert parts[0].getvalue().startswith(b"Dear Mr. Chairman")
    assert opened.order is not None and opened.order_key is not None
    assert opened.order.encode().decode() == expected["order_block"]
    assert opened.order_key.hex() == expected["order_block_key"]
    # The transcript of it verifies against the two cards, and only them.
    from pouch import transcript

    cards = [vector_identity(n).card() for n in ("Kim Jong-un", "Donald J. Trump")]
    with open(LETTERS / "transcript_kim_trump.tar", "rb") as f:
        report = transcript.verify(f, cards)
    assert report.problems == [] and report.verified == 1
