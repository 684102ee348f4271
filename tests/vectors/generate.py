"""Generate pouch's own age vectors, from fixed keys and fixed randomness.

    python -m tests.vectors.generate      # rewrites tests/vectors/*/*

The files use the CCTV testkit's format (key: value lines, a blank line, the
age file), so one loader reads both. "Randomness" is SPEC.md's test stream:
the k-th draw of n bytes (k = 1, 2, ...) is SHAKE-256("pouch test vector" ||
label || k as 8 bytes, big-endian), first n bytes. Identities draw from it
too, under their own label. tests/test_vectors.py regenerates every file and
requires the same bytes: the encoder is exact, not merely compatible.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import blake3

from pouch import _canonical, age, container, letter, transcript
from pouch.age.armor import armor
from pouch.identity import Identity
from pouch.letter.order import first

HERE = Path(__file__).resolve().parent / "age"


def stream_rand(label: str) -> Callable[[int], bytes]:
    k = 0

    def rand(n: int) -> bytes:
        nonlocal k
        k += 1
        seed = b"pouch test vector" + label.encode() + k.to_bytes(8, "big")
        return hashlib.shake_256(seed).digest(n)

    return rand


def plaintext(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def _vector(
    name: str,
    recipients: list[age.Recipient],
    keys: list[str],
    data: bytes,
    *,
    armored: bool = False,
    comment: str,
) -> tuple[str, bytes]:
    out = io.BytesIO()
    age.encrypt(io.BytesIO(data), out, recipients, rand=stream_rand(name))
    body = armor(out.getvalue()) if armored else out.getvalue()
    lines = ["expect: success", f"payload: {hashlib.sha256(data).hexdigest()}", *keys]
    if armored:
        lines.append("armored: yes")
    lines.append(f"comment: {comment}")
    return name, "\n".join(lines).encode() + b"\n\n" + body


def vectors() -> list[tuple[str, bytes]]:
    ids = [age.X25519Identity.generate(stream_rand(f"identity {i}")) for i in range(3)]
    return [
        _vector(
            "x25519_two_chunks",
            [ids[0].recipient],
            [f"identity: {ids[0]}"],
            plaintext(65536 + 100),
            comment="one X25519 recipient, a full chunk then a short final one",
        ),
        _vector(
            "x25519_full_final_chunk",
            [ids[0].recipient],
            [f"identity: {ids[0]}"],
            plaintext(2 * 65536),
            comment="the payload ends on a chunk boundary: the final chunk is full",
        ),
        _vector(
            "x25519_empty",
            [ids[1].recipient],
            [f"identity: {ids[1]}"],
            b"",
            comment="an empty payload is one empty final chunk",
        ),
        _vector(
            "x25519_three_recipients_armored",
            [i.recipient for i in ids],
            [f"identity: {ids[2]}"],
            plaintext(1000),
            armored=True,
            comment="three X25519 recipients, armored; the third identity opens it",
        ),
        _vector(
            "scrypt_work_factor_10",
            [age.ScryptRecipient("Singapore, 12 June 2018", work_factor=10)],
            ["passphrase: Singapore, 12 June 2018"],
            plaintext(300),
            comment="a passphrase at work factor 10 (pouch encrypts at 18 by default)",
        ),
    ]


STATEMENTS = Path(__file__).resolve().parent / "statements"
SUMMIT = datetime(2018, 5, 24, 9, 0, tzinfo=UTC)


def vector_identity(name: str) -> Identity:
    """A principal with fixed keys: the test stream labelled "identity NAME"."""
    return Identity.generate(name, SUMMIT, rand=stream_rand(f"identity {name}"))


def statement_vectors() -> list[tuple[str, bytes]]:
    from pouch.custody import (
        RECORD_ACCEPTANCE,
        RECORD_CREDENTIAL,
        RECORD_HANDOVER,
        accept,
        accredit,
        hand_over,
        revoke,
    )

    cards = [
        (f"card_{who}.json", vector_identity(name).card().encode() + b"\n")
        for who, name in (("kim", "Kim Jong-un"), ("trump", "Donald J. Trump"))
    ]
    # Kim accredits Kim Yong-chol as his envoy for letters to Trump, for
    # 30 days from 29 May 2018; then revokes it on 1 June.
    kim, trump = vector_identity("Kim Jong-un"), vector_identity("Donald J. Trump")
    start = datetime(2018, 5, 29, 0, 0, tzinfo=UTC)
    credential, scope = accredit(
        kim,
        vector_identity("Kim Yong-chol").card(),
        "envoy",
        start,
        datetime(2018, 6, 28, 0, 0, tzinfo=UTC),
        [trump.fingerprint],
        rand=stream_rand("credential kim to kim yong-chol"),
    )
    assert scope is not None
    revocation = revoke(kim, credential.id, datetime(2018, 6, 1, 0, 0, tzinfo=UTC))
    # Kim hands a pouch to Kim Yong-chol in Pyongyang, who accepts it; the
    # custody receipt holds the credential, the handover and the acceptance.
    chol = vector_identity("Kim Yong-chol")
    envelope = blake3.blake3(b"the envelope of Kim's reply").hexdigest()
    handover = hand_over(kim, envelope, chol.signing_key, datetime(2018, 5, 30, 8, 0, tzinfo=UTC),
                         place="Pyongyang", credentials=[credential.id])  # fmt: skip
    acceptance = accept(chol, handover, datetime(2018, 5, 30, 8, 5, tzinfo=UTC), "Pyongyang")
    records = [
        container.Record(RECORD_CREDENTIAL, credential.encode()),
        container.Record(RECORD_HANDOVER, handover.statement.encode()),
        container.Record(RECORD_ACCEPTANCE, acceptance.statement.encode()),
    ]
    return [
        *cards,
        ("credential_kim_chol.json", credential.encode() + b"\n"),
        ("credential_kim_chol.scope.json", scope.encode() + b"\n"),
        ("revocation_kim_chol.json", revocation.encode() + b"\n"),
        ("handover_kim_chol.json", handover.statement.encode() + b"\n"),
        ("acceptance_kim_chol.json", acceptance.statement.encode() + b"\n"),
        ("custody_kim_chol.receipt", container.custody_receipt(envelope, records)),
    ]


LETTERS = Path(__file__).resolve().parent / "letters"
CANCEL = (
    b"Dear Mr. Chairman,\n\nWe were very much looking forward to being there with you. "
    b"Sadly, at this time, it is inappropriate to have this long-planned meeting.\n"
)


def letter_vectors() -> list[tuple[str, bytes]]:
    """A classic letter (pyca's HPKE randomness cannot be fixed) from Trump
    to Kim with one attachment, and its expected ids."""
    trump, kim = vector_identity("Donald J. Trump"), vector_identity("Kim Jong-un")
    out = io.BytesIO()
    sealed = letter.seal(
        trump,
        [kim.card()],
        io.BytesIO(CANCEL),
        out,
        attachments=[("annex.txt", io.BytesIO(plaintext(70000)))],
        subject="The Singapore summit",
        kem="classic",
        stream=stream_rand("stream")(16).hex(),
        order=first([kim.fingerprint]),
        now=SUMMIT,
        rand=stream_rand("letter trump to kim"),
    )
    block_key = sealed.block_keys[kim.fingerprint]
    ids = _canonical.dumps({
        "letter_id": sealed.letter_id, "envelope_id": sealed.envelope_id, "opener": "Kim Jong-un",
        "order_block": first([kim.fingerprint])[kim.fingerprint].encode().decode(),
        "order_block_key": block_key.hex(),
    })  # fmt: skip
    # Kim's transcript of it, with its keys disclosed (SPEC.md 6).
    bundle = io.BytesIO()
    file_key = letter.disclose(kim, io.BytesIO(out.getvalue()))
    entry = transcript.Entry(sealed.letter_id, sealed.envelope_id, file_key,
                             {kim.fingerprint: block_key})  # fmt: skip
    transcript.write(bundle, [kim.fingerprint, trump.fingerprint], "2019-01-14T00:00:00Z",
                     [entry], [io.BytesIO(out.getvalue())])  # fmt: skip
    return [
        ("trump_to_kim.pouch", out.getvalue()),
        ("trump_to_kim.json", ids + b"\n"),
        ("transcript_kim_trump.tar", bundle.getvalue()),
    ]


PAPER = Path(__file__).resolve().parent / "paper"


def paper_vectors() -> list[tuple[str, bytes]]:
    """The letter vector cut into paper codes at phone density (SPEC.md 7.5)."""
    from pouch.paper import DENSITIES, codes

    container = dict(letter_vectors())["trump_to_kim.pouch"]
    phone = DENSITIES["phone"]
    cut = codes.encode(container, phone.share_max, phone.per_page)
    head = codes.parse(cut[0])
    summary = _canonical.dumps({
        "density": "phone", "k": head.k, "m": head.m, "share_size": len(head.share),
        "digest": codes.digest(container).hex(),
    })  # fmt: skip
    stream = b"".join(len(c).to_bytes(2, "big") + c for c in cut)
    return [("trump_to_kim.codes", stream), ("trump_to_kim.json", summary + b"\n")]


def main() -> None:
    folders = (
        (HERE, vectors()),
        (STATEMENTS, statement_vectors()),
        (LETTERS, letter_vectors()),
        (PAPER, paper_vectors()),
    )
    for folder, generated in folders:
        folder.mkdir(exist_ok=True)
        for name, data in generated:
            (folder / name).write_bytes(data)
            print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
