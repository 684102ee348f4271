"""Sealed letters through the library: round trips and every kind of tampering."""

from __future__ import annotations

import contextlib
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pouch import _cores, age, container, letter
from pouch.age import parse_header
from pouch.errors import (
    FileError,
    LetterError,
    NoIdentityMatchError,
    NotAddressedError,
    PouchError,
)
from pouch.identity import Identity
from pouch.letter import _parallel_open, _parallel_seal, padme
from pouch.letter.order import first

from .vectors.generate import stream_rand, vector_identity

SUMMIT = datetime(2018, 5, 24, 9, 0, tzinfo=UTC)
TRUMP = vector_identity("Donald J. Trump")
KIM = vector_identity("Kim Jong-un")
POMPEO = vector_identity("Mike Pompeo")
CHOL = vector_identity("Kim Yong-chol")

CANCEL = (
    b"Dear Mr. Chairman,\n\nBased on the anger and open hostility displayed in your most "
    b"recent statement, I feel it is inappropriate, at this time, to have our meeting.\n"
)


def seal(
    sender: Identity = TRUMP,
    to: tuple[Identity, ...] = (KIM,),
    body: bytes = CANCEL,
    attachments: tuple[tuple[str, bytes], ...] = (),
    label: str = "letter",
    **kw: object,
) -> bytes:
    dst = io.BytesIO()
    letter.seal(
        sender,
        [r.card() for r in to],
        io.BytesIO(body),
        dst,
        attachments=[(n, io.BytesIO(d)) for n, d in attachments],
        stream="5" * 32,
        order=first(r.fingerprint for r in to),
        now=SUMMIT,
        rand=stream_rand(label),
        **kw,  # type: ignore[arg-type]
    )
    return dst.getvalue()


def open_(identity: Identity, data: bytes) -> tuple[letter.Opened, dict[int, bytes]]:
    parts: dict[int, io.BytesIO] = {}

    def sink(part: int) -> io.BytesIO:
        parts[part] = io.BytesIO()
        return parts[part]

    opened = letter.open_letter(identity, io.BytesIO(data), sink)  # type: ignore[arg-type]
    return opened, {k: v.getvalue() for k, v in parts.items()}


# --- round trips ---------------------------------------------------------------


def test_one_recipient() -> None:
    sealed = seal()
    opened, parts = open_(KIM, sealed)
    assert parts == {0: CANCEL}
    h = opened.header
    assert (h.sender, h.recipients, h.date) == (
        TRUMP.signing_key,
        (KIM.signing_key,),
        "2018-05-24T09:00:00Z",
    )
    assert opened.post_quantum and opened.stanzas == 2  # and the sender's own copy
    assert opened.envelope_id == container.load(io.BytesIO(sealed)).envelope_id()
    assert len(opened.letter_id) == 64


def test_three_recipients_each_open_it() -> None:
    sealed = seal(to=(KIM, CHOL, POMPEO), label="three")
    opened = [open_(who, sealed)[0] for who in (KIM, CHOL, POMPEO)]
    assert len({o.letter_id for o in opened}) == 1
    # Each reads its own order block; the sender reads its own copy, and has none.
    assert [o.order.seq if o.order else None for o in opened] == [1, 1, 1]
    own = open_(TRUMP, sealed)[0]
    assert own.own and own.letter_id == opened[0].letter_id
    with pytest.raises(NoIdentityMatchError):
        open_(vector_identity("Somebody else"), sealed)


def test_a_co_recipient_cannot_read_another_pairs_order_block() -> None:
    from pouch.letter.order import block_key, open_block

    sealed = seal(to=(KIM, CHOL), label="two")
    opened = open_(KIM, sealed)[0]
    header = opened.header
    # Kim's key opens Kim's block only: Chol's is sealed to Chol.
    mine = block_key(KIM.x25519.exchange, header.order_key, KIM.x25519.recipient.public_bytes)
    assert open_block(mine, header.blocks[KIM.fingerprint], TRUMP.signing_key, KIM.fingerprint)
    with pytest.raises(LetterError, match="does not open"):
        open_block(mine, header.blocks[CHOL.fingerprint], TRUMP.signing_key, CHOL.fingerprint)
    # Nor can a block be moved to another recipient's entry.
    with pytest.raises(LetterError, match="does not open"):
        open_block(mine, header.blocks[KIM.fingerprint], TRUMP.signing_key, CHOL.fingerprint)


def test_empty_body_and_attachments() -> None:
    annex = os.urandom(3 * 1024 * 1024 + 5)
    sealed = seal(
        body=b"", attachments=(("annex.bin", annex), ("empty.txt", b""), ("map.png", b"x"))
    )
    opened, parts = open_(KIM, sealed)
    assert parts == {1: annex, 3: b"x"}  # empty parts have no segments
    assert [(p.kind, p.name, p.size) for p in opened.manifest.parts] == [
        ("body", None, 0),
        ("attachment", "annex.bin", len(annex)),
        ("attachment", "empty.txt", 0),
        ("attachment", "map.png", 1),
    ]
    assert opened.manifest.segments == 5  # 4 for the annex, 1 for the map


def test_sealing_is_reproducible_with_injected_randomness() -> None:
    # classic only: pyca's HPKE draws its own randomness
    assert seal(kem="classic", label="r") == seal(kem="classic", label="r")


def test_classic_and_pq_choice() -> None:
    assert not open_(KIM, seal(kem="classic"))[0].post_quantum
    assert open_(KIM, seal(kem="pq"))[0].post_quantum


def test_padding_and_decoys() -> None:
    sealed = seal(to=(KIM, CHOL), pad=True, body=b"x" * 1000, label="pad")
    opened, parts = open_(KIM, sealed)
    assert parts[0] == b"x" * 1000
    assert opened.manifest.padding == padme(1000) - 1000
    assert opened.header.decoys == 2 and opened.stanzas == 5
    # the carrier sees five identical stanzas (one is the sender's own copy)
    info = container.load(io.BytesIO(sealed))
    stanzas = parse_header(info.age_stream()).stanzas
    assert {s.type for s in stanzas} == {"mlkem768x25519"} and len(stanzas) == 5


@pytest.mark.parametrize("n", [0, 1, 2, 100, 1000, 12345, 1 << 20, 10**9])
def test_padme_buckets(n: int) -> None:
    p = padme(n)
    assert n <= p <= n * 1.12 + 2
    assert padme(p) == p


# --- outer tampering: a carrier flips bits, cuts the file -------------------------


@pytest.fixture(scope="module")
def small_letter() -> bytes:
    sealed = seal(body=b"Singapore, 12 June.", label="small")
    # Two post-quantum stanzas (Kim's, and Trump's own copy), the order block.
    assert 4500 <= len(sealed) <= 5000
    return sealed


def test_every_single_bit_flip_is_rejected(small_letter: bytes) -> None:
    accepted = []
    for i in range(len(small_letter) * 8):
        data = bytearray(small_letter)
        data[i // 8] ^= 1 << (i % 8)
        try:
            open_(KIM, bytes(data))
        except PouchError:
            continue
        accepted.append(i)
    assert accepted == []


def test_every_truncation_is_rejected(small_letter: bytes) -> None:
    for n in range(len(small_letter)):
        with pytest.raises(PouchError):
            open_(KIM, small_letter[:n])


# --- inner tampering: a co-recipient who knows the file key -------------------------


def _split(sealed: bytes, reader: Identity) -> tuple[bytes, bytes, bytes, bytes]:
    """(age header, nonce, file key, letter plaintext) as a co-recipient sees them."""
    c = container.load(io.BytesIO(sealed))
    stream = c.age_stream()
    header = parse_header(stream)
    file_key = reader.pq.unwrap(header.stanzas) or reader.x25519.unwrap(header.stanzas)
    assert file_key is not None
    nonce = stream.read(16)
    d = age.Decryptor(
        io.BytesIO(header.marshal() + nonce + stream.read()), [reader.pq, reader.x25519]
    )
    return header.marshal(), nonce, file_key, d.reader().read()


def _envelope(age_header: bytes, nonce: bytes, file_key: bytes, plain: bytes) -> bytes:
    out = io.BytesIO()
    out.write(age_header + nonce)
    out.write(_stream(file_key, nonce, plain))
    body = out.getvalue()
    return container.header(len(body)) + body


def _stream(file_key: bytes, nonce: bytes, plain: bytes) -> bytes:
    """An age STREAM payload, as a co-recipient who knows the file key writes
    one: from the spec (c2sp.org/age, "Payload"), not with pouch's engine."""
    key = HKDF(hashes.SHA256(), 32, salt=nonce, info=b"payload").derive(file_key)
    chunks = [plain[i : i + 65536] for i in range(0, len(plain), 65536)] or [b""]
    return b"".join(
        ChaCha20Poly1305(key).encrypt(
            i.to_bytes(11, "big") + bytes([i == len(chunks) - 1]), c, None
        )
        for i, c in enumerate(chunks)
    )


def _segments(plain: bytes) -> tuple[bytes, list[bytes]]:
    """Split a letter plaintext into its prefix (preamble, header) and raw segments."""
    n = int.from_bytes(plain[16:20], "big")
    pos = 20 + n
    prefix, segs = plain[:pos], []
    while pos < len(plain):
        length = int.from_bytes(plain[pos + 5 : pos + 9], "big")
        end = pos + 9 + length + 64
        segs.append(plain[pos:end])
        pos = end
    return prefix, segs


def test_a_co_recipient_cannot_change_the_payload() -> None:
    sealed = seal(to=(KIM, CHOL))
    h, nonce, key, plain = _split(sealed, CHOL)
    assert (
        open_(KIM, _envelope(h, nonce, key, plain))[1][0] == CANCEL
    )  # the re-encryption is faithful
    forged = plain.replace(b"inappropriate", b"appropriate!!")
    with pytest.raises(LetterError, match="segment 0 is not signed by the sender"):
        open_(KIM, _envelope(h, nonce, key, forged))


def test_the_letter_cannot_move_to_a_new_nonce() -> None:
    sealed = seal(to=(KIM, CHOL))
    h, _, key, plain = _split(sealed, CHOL)
    with pytest.raises(LetterError, match="moved into another envelope"):
        open_(KIM, _envelope(h, os.urandom(16), key, plain))


def test_segments_cannot_be_spliced_reordered_dropped_or_extended() -> None:
    body = os.urandom(2 * 1024 * 1024 + 10)  # three data segments
    a = seal(to=(KIM, CHOL), body=body, label="a")
    b = seal(to=(KIM, CHOL), body=os.urandom(len(body)), label="b")
    h, nonce, key, plain = _split(a, CHOL)
    prefix, segs = _segments(plain)
    _, other = _segments(_split(b, CHOL)[3])
    assert len(segs) == 4

    cases = {
        "spliced": prefix + other[0] + b"".join(segs[1:]),
        "reordered": prefix + segs[1] + segs[0] + b"".join(segs[2:]),
        "final dropped": prefix + b"".join(segs[:-1]),
        "data after the final segment": plain + b"\x00",
        "segment after the final one": plain + segs[0],
    }
    messages = {
        "spliced": "segment 0 is not signed",
        "reordered": "segment 0 is not signed",
        "final dropped": "final segment is missing",
        "data after the final segment": "data after the final segment",
        "segment after the final one": "data after the final segment",
    }
    for name, forged in cases.items():
        with pytest.raises(LetterError, match=messages[name]):
            open_(KIM, _envelope(h, nonce, key, forged))


def test_the_manifest_cannot_be_altered() -> None:
    sealed = seal(to=(KIM, CHOL), attachments=(("annex.pdf", b"map"),))
    h, nonce, key, plain = _split(sealed, CHOL)
    forged = plain.replace(b'"annex.pdf"', b'"annex.exe"')
    assert forged != plain
    with pytest.raises(LetterError, match="is not signed by the sender"):
        open_(KIM, _envelope(h, nonce, key, forged))


def test_a_letter_not_naming_you_is_refused() -> None:
    # Chol re-encrypts Kim's letter to Pompeo with any age: surreptitious forwarding.
    sealed = seal(to=(KIM, CHOL))
    _, _, _, plain = _split(sealed, CHOL)
    out = io.BytesIO()
    age.encrypt(io.BytesIO(plain), out, [POMPEO.pq.recipient])
    forwarded = container.header(len(out.getvalue())) + out.getvalue()
    with pytest.raises(NotAddressedError, match="not addressed to you"):
        open_(POMPEO, forwarded)


def test_stanzas_must_match_what_the_letter_declares() -> None:
    """A sender who claims post-quantum sealing but wraps the key classically
    (a bug, or a lie to a recipient who asked for --pq) is caught."""
    with pytest.raises(LetterError, match="stanzas do not match"):
        open_(KIM, _handmade({"kem": "mlkem768x25519"}))


def _handmade(
    header_changes: dict[str, object], pad_bytes: int = 0, parts: int = 1, body: bytes = b"body"
) -> bytes:
    """A letter written by a sender who breaks the rules on purpose."""
    from dataclasses import replace

    from pouch.letter._format import PADDING
    from pouch.letter._segments import LetterWriter

    # One stanza for the recipient, one for the sender's own copy.
    enc = age.Encryptor([KIM.x25519.recipient, TRUMP.x25519.recipient])
    header = replace(_handmade_header(enc), **header_changes)  # type: ignore[arg-type]
    out = io.BytesIO()
    with enc.writer(out) as w:
        lw = LetterWriter(w.write, header, TRUMP.signing)
        lw.add_part(io.BytesIO(body))
        for i in range(parts - 1):
            lw.add_part(io.BytesIO(b""), f"f{i}")
        for _ in range(pad_bytes and 1):
            lw._segment(PADDING, 0, bytes(pad_bytes))
            lw._padding = pad_bytes
        lw.close()
    return container.header(len(out.getvalue())) + out.getvalue()


def _handmade_header(enc: age.Encryptor) -> Any:
    from pouch.letter._format import LetterHeader, envelope_binding
    from pouch.letter.order import seal_blocks

    blocks = first([KIM.fingerprint])
    epk, sealed, _ = seal_blocks(
        {KIM.fingerprint: (KIM.x25519.recipient.public_bytes, blocks[KIM.fingerprint])},
        TRUMP.signing_key,
    )
    return LetterHeader(
        sender=TRUMP.signing_key,
        recipients=(KIM.signing_key,),
        date="2018-05-24T09:00:00Z",
        subject="",
        in_reply_to=None,
        stream="5" * 32,
        order_key=epk,
        blocks=sealed,
        kem="x25519",
        padding=False,
        decoys=0,
        envelope=envelope_binding(enc.header, enc.nonce),
    )


def test_the_padding_must_follow_the_header() -> None:
    assert open_(KIM, _handmade({}))[1] == {0: b"body"}
    with pytest.raises(LetterError, match="padding does not match the header"):
        open_(KIM, _handmade({}, pad_bytes=10))  # "none", yet padded
    with pytest.raises(LetterError, match="padding does not match the header"):
        open_(KIM, _handmade({"padding": True}, body=bytes(1000)))  # "padme", yet not padded


def test_order_blocks_must_name_the_recipients() -> None:
    good = _handmade_header(age.Encryptor([KIM.x25519.recipient]))
    block = good.blocks[KIM.fingerprint]
    with pytest.raises(LetterError, match="not one order block per recipient"):
        open_(KIM, _handmade({"blocks": {POMPEO.fingerprint: block}}))
    with pytest.raises(LetterError, match="bad order block"):
        open_(KIM, _handmade({"blocks": {KIM.fingerprint: block[:40]}}))
    # A block sealed for this letter's recipient by another sender.
    other = _handmade({"order_key": bytes(32)})
    with pytest.raises(LetterError, match="order block"):
        open_(KIM, other)


def test_the_date_must_be_rfc3339() -> None:
    with pytest.raises(LetterError, match="bad date"):
        open_(KIM, _handmade({"date": "\x1b[1A2018-05-24T0"}))


def test_too_many_parts_are_refused() -> None:
    from pouch.letter._format import MAX_PARTS

    assert open_(KIM, _handmade({}, parts=MAX_PARTS))[0].manifest.parts[-1].name == "f998"
    with pytest.raises(LetterError, match="malformed manifest"):
        open_(KIM, _handmade({}, parts=MAX_PARTS + 1))


def test_attachment_names_are_capped_in_bytes() -> None:
    name = letter.sanitize_name("\U0001f4dc" * 200 + ".txt", 1)
    assert len(name.encode()) <= 200 and name.startswith("\U0001f4dc")
    assert letter.sanitize_name("a\u202eb\x1b", 2) == "a_b_"


# --- sealing on every core -------------------------------------------------------

MiB = 1 << 20


def _pseudo_random(n: int, label: str) -> bytes:
    return stream_rand(label)(n)


def _seal_files(
    folder: Path, parts: list[tuple[str | None, bytes]], jobs: int, pad: bool = False
) -> bytes:
    paths = []
    for i, (_, data) in enumerate(parts):
        paths.append(folder / f"part{i}")
        paths[-1].write_bytes(data)
    out = folder / f"sealed-{jobs}.pouch"
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(p, "rb")) for p in paths]
        dst = stack.enter_context(open(out, "w+b"))
        letter.seal(
            TRUMP,
            [KIM.card()],
            files[0],
            dst,
            attachments=[
                (name or "", f) for (name, _), f in zip(parts[1:], files[1:], strict=True)
            ],
            stream="5" * 32,
            order=first([KIM.fingerprint]),
            now=SUMMIT,
            rand=stream_rand("cores"),
            kem="classic",  # X-Wing takes its randomness from the OS
            pad=pad,
            jobs=jobs,
        )
    return out.read_bytes()


def _body(folder: Path) -> BinaryIO:
    (folder / "body.txt").write_bytes(CANCEL)
    return open(folder / "body.txt", "rb")


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many processes each parallel sealing used (a spy on the real run)."""
    seen: list[int] = []
    real = _cores.run

    def spy(work: Any, bounds: Any, meanwhile: Any = None) -> list[bytes]:
        if meanwhile is None:  # the sealing runs, not the envelope's hash
            seen.append(len(bounds) - 1)
        return real(work, bounds, meanwhile)

    monkeypatch.setattr(_cores, "run", spy)
    return seen


@pytest.mark.parametrize(
    ("sizes", "jobs", "pad"),
    [
        # runs cut inside segments and inside chunks; an empty attachment
        ((3 * MiB + 5, 0, 9 * MiB + 12345), 2, False),
        ((3 * MiB + 5, 0, 9 * MiB + 12345), 3, False),
        # whole segments only, and padding segments sealed by the workers
        ((17, 10 * MiB), 2, True),
    ],
)
def test_sealing_on_every_core_gives_the_same_letter(
    tmp_path: Path, runs: list[int], sizes: tuple[int, ...], jobs: int, pad: bool
) -> None:
    parts: list[tuple[str | None, bytes]] = [
        (None if i == 0 else f"annex-{i}.bin", _pseudo_random(n, f"part {i}"))
        for i, n in enumerate(sizes)
    ]
    one = _seal_files(tmp_path, parts, jobs=1, pad=pad)
    assert runs == []
    many = _seal_files(tmp_path, parts, jobs=jobs, pad=pad)
    assert runs == [jobs]
    assert many == one
    opened, got = open_(KIM, many)
    assert got == {i: data for i, (_, data) in enumerate(parts) if data}
    assert opened.manifest.padding == (padme(sum(sizes)) - sum(sizes) if pad else 0)


def test_a_file_that_lies_about_its_size_is_read_to_its_end(
    tmp_path: Path, runs: list[int]
) -> None:
    big = tmp_path / "annex.bin"
    big.write_bytes(_pseudo_random(10 * MiB, "annex"))
    out = tmp_path / "sealed.pouch"
    with open(big, "rb") as annex, open("/proc/self/status", "rb") as status:
        with open(out, "w+b") as dst, _body(tmp_path) as body:
            letter.seal(TRUMP, [KIM.card()], body, dst,
                         attachments=[("annex.bin", annex), ("status", status)],
                         stream="5" * 32, order=first([KIM.fingerprint]), jobs=2)  # fmt: skip
    assert runs == []  # /proc says 0 bytes: the stream path read it
    _, got = open_(KIM, out.read_bytes())
    assert got[1] == big.read_bytes()
    assert got[2].startswith(b"Name:")


@pytest.mark.parametrize("change", ["shrinks", "grows"])
def test_a_file_changing_size_while_sealed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    annex = tmp_path / "annex.bin"
    annex.write_bytes(_pseudo_random(12 * MiB, "annex"))
    real = _parallel_seal.plan

    def plan_then_change(*args: Any) -> _parallel_seal.Plan | None:
        layout = real(*args)  # the sizes are taken; now the file changes
        with open(annex, "r+b") as f:
            if change == "shrinks":
                f.truncate(5 * MiB)
            else:
                f.seek(0, os.SEEK_END)
                f.write(b"more")
        return layout

    monkeypatch.setattr(_parallel_seal, "plan", plan_then_change)
    with open(annex, "rb") as src, open(tmp_path / "sealed.pouch", "w+b") as dst:
        with (
            pytest.raises(FileError, match="shrank" if change == "shrinks" else "grew"),
            _body(tmp_path) as body,
        ):
            letter.seal(TRUMP, [KIM.card()], body, dst,
                         attachments=[("annex.bin", src)], stream="5" * 32,
                         order=first([KIM.fingerprint]), jobs=2)  # fmt: skip


# --- opening on every core ---------------------------------------------------------


def _open_file(
    folder: Path, data: bytes, jobs: int, reader: Identity = KIM, keep: bool = True
) -> tuple[letter.Opened, dict[int, bytes]]:
    """Open data from a file, its parts into files (or memory, keep=False)."""
    path = folder / "in.pouch"
    path.write_bytes(data)
    parts: dict[int, BinaryIO] = {}

    def sink(part: int) -> BinaryIO:
        parts[part] = open(folder / f"out{part}", "w+b") if keep else io.BytesIO()
        return parts[part]

    try:
        opened = letter.open_letter(reader, path, sink, jobs=jobs)
        got = {}
        for part, f in parts.items():
            f.seek(0)
            got[part] = f.read()
        return opened, got
    finally:
        for f in parts.values():
            f.close()


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many letters the parallel opener laid out (a spy on the real one)."""
    seen: list[int] = []
    real = _parallel_open.layout

    def spy(*args: Any) -> Any:
        seen.append(1)
        return real(*args)

    monkeypatch.setattr(_parallel_open, "layout", spy)
    return seen


@pytest.mark.parametrize(
    ("sizes", "pad", "jobs"),
    [
        ((9 * MiB + 5, 0, 3 * MiB + 7), False, 2),
        ((9 * MiB + 5, 0, 3 * MiB + 7), False, 3),
        ((17, 10 * MiB), True, 2),
    ],
)
def test_opening_on_every_core_gives_the_same_letter(
    tmp_path: Path, layouts: list[int], sizes: tuple[int, ...], pad: bool, jobs: int
) -> None:
    parts = [(None if i == 0 else f"a{i}", _pseudo_random(n, f"p{i}")) for i, n in enumerate(sizes)]
    sealed = _seal_files(tmp_path, parts, jobs=1, pad=pad)
    one, got_one = _open_file(tmp_path, sealed, jobs=1)
    assert layouts == []
    many, got_many = _open_file(tmp_path, sealed, jobs=jobs)
    assert layouts == [1]
    assert many == one
    assert got_many == got_one == {i: d for i, (_, d) in enumerate(parts) if d}


def test_parts_kept_in_memory_fall_back_to_the_stream(tmp_path: Path, layouts: list[int]) -> None:
    body = _pseudo_random(9 * MiB, "body")
    sealed = _seal_files(tmp_path, [(None, body)], jobs=1)
    opened, got = _open_file(tmp_path, sealed, jobs=2, keep=False)
    assert layouts == [1]  # laid out, then opened as a stream
    assert got == {0: body}
    assert opened.manifest.parts[0].size == len(body)


def _big_forgeries() -> tuple[bytes, dict[str, tuple[bytes, str]]]:
    """A large letter to KIM and CHOL, and what CHOL (who holds the file key)
    can make of it, each with the error it must meet."""
    body = _pseudo_random(9 * MiB + 10, "big")
    a = seal(to=(KIM, CHOL), body=body, label="big a", kem="classic")
    b = seal(to=(KIM, CHOL), body=body[::-1], label="big b", kem="classic")
    h, nonce, key, plain = _split(a, CHOL)
    prefix, segs = _segments(plain)
    _, other = _segments(_split(b, CHOL)[3])
    last = bytearray(segs[-2])
    last[20] ^= 1
    cases = {
        "spliced": (
            prefix + b"".join(segs[:4]) + other[4] + b"".join(segs[5:]),
            "segment 4 is not",
        ),
        "reordered": (prefix + segs[1] + segs[0] + b"".join(segs[2:]), "segment 0 is not signed"),
        "changed": (prefix + b"".join(segs[:-2]) + bytes(last) + segs[-1], "segment 9 is not"),
        "final dropped": (prefix + b"".join(segs[:-1]), "final segment is missing"),
        "after the final": (plain + segs[3], "data after the final segment"),
    }
    return a, {k: (_envelope(h, nonce, key, v), m) for k, (v, m) in cases.items()}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_co_recipient_cannot_forge_a_large_letter(
    tmp_path: Path, layouts: list[int], jobs: int
) -> None:
    good, forgeries = _big_forgeries()
    _open_file(tmp_path, good, jobs=jobs)
    for forged, message in forgeries.values():
        with pytest.raises(LetterError, match=message):
            _open_file(tmp_path, forged, jobs=jobs)
    assert len(layouts) == (1 + len(forgeries) if jobs > 1 else 0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_damaged_large_letter_is_refused(tmp_path: Path, jobs: int) -> None:
    good, _ = _big_forgeries()
    for at in (200, len(good) // 2, len(good) - 100, len(good) - 1):
        damaged = bytearray(good)
        damaged[at] ^= 0x10
        with pytest.raises(PouchError):
            _open_file(tmp_path, bytes(damaged), jobs=jobs)
    for cut in (len(good) // 2, len(good) - 17):
        with pytest.raises(PouchError, match="truncated"):
            _open_file(tmp_path, good[:cut], jobs=jobs)


def _sender_made(segments: list[tuple[int, int, bytes]]) -> bytes:
    """A large letter whose sender signs segments in a shape the rules forbid."""
    from pouch.letter._segments import LetterWriter

    enc = age.Encryptor([KIM.x25519.recipient])
    header = _handmade_header(enc)
    out = io.BytesIO()
    with enc.writer(out) as w:
        lw = LetterWriter(w.write, header, TRUMP.signing)
        for kind, part, data in segments:
            lw._segment(kind, part, data)
        lw.close()
    return container.header(len(out.getvalue())) + out.getvalue()


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_shape_rules_hold_on_every_path(tmp_path: Path, jobs: int) -> None:
    from pouch.letter._format import DATA, PADDING

    full = [(DATA, 0, _pseudo_random(MiB, f"s{i}")) for i in range(9)]
    cases = {
        "follows a short one": [(DATA, 0, b"short"), *full],
        "segment 9 out of order": [*[(DATA, 1, d) for _, _, d in full], (DATA, 0, b"late")],
        "segment 1 out of order": [(PADDING, 0, bytes(10)), *full],
        "bad padding segment": [*full, (PADDING, 0, b"\x01" * 10)],
    }
    for message, segments in cases.items():
        with pytest.raises(LetterError, match=message):
            _open_file(tmp_path, _sender_made(segments), jobs=jobs)


def test_parts_go_in_parallel_only_to_fresh_files_of_their_own(
    tmp_path: Path, layouts: list[int]
) -> None:
    """A file with content, in append mode, or shared between parts is
    written as a stream: pwrite at fixed offsets would garble it."""
    body, annex = _pseudo_random(9 * MiB, "body"), _pseudo_random(3 * MiB, "annex")
    sealed = _seal_files(tmp_path, [(None, body), ("annex", annex)], jobs=1)
    (tmp_path / "in.pouch").write_bytes(sealed)

    shared = tmp_path / "both"
    with open(shared, "w+b") as f:
        letter.open_letter(KIM, tmp_path / "in.pouch", lambda part: f, jobs=2)
    assert shared.read_bytes() == body + annex  # one after the other, as streamed

    log = tmp_path / "log"
    log.write_bytes(b"HEADER\n")
    with open(log, "ab") as f:
        letter.open_letter(KIM, tmp_path / "in.pouch", lambda part: f if part == 0 else None,
                            jobs=2)  # fmt: skip
    assert log.read_bytes() == b"HEADER\n" + body
    assert len(layouts) == 2  # both laid out, both then streamed

    fresh = tmp_path / "fresh"
    with open(fresh, "w+b") as f:
        letter.open_letter(KIM, tmp_path / "in.pouch", lambda part: f if part == 0 else None,
                            jobs=2)  # fmt: skip
        assert f.tell() == len(body)  # left at the end, as a stream of writes would
    assert fresh.read_bytes() == body


def test_a_letter_in_tiny_segments_is_opened_as_a_stream(
    tmp_path: Path, layouts: list[int]
) -> None:
    """A sender may cut padding into 1-byte segments; laying out millions of
    them would cost memory per segment, so the stream reads it instead."""
    from pouch.letter._format import DATA, PADDING

    full = [(DATA, 0, _pseudo_random(MiB, f"s{i}")) for i in range(9)]
    tiny = [(PADDING, 0, b"\x00")] * 3000
    sealed = _sender_made([*full, *tiny])
    with pytest.raises(LetterError, match="malformed manifest"):
        _open_file(tmp_path, sealed, jobs=2)
    assert layouts == [1]


def test_a_forged_first_segment_stops_the_layout(tmp_path: Path, layouts: list[int]) -> None:
    """Whoever cannot sign as the sender gets no layout walked, no part
    files made."""
    _, forgeries = _big_forgeries()
    forged, _ = forgeries["reordered"]
    made: list[int] = []

    def sink(part: int) -> None:
        made.append(part)

    (tmp_path / "f.pouch").write_bytes(forged)
    with pytest.raises(LetterError, match="segment 0 is not signed"):
        letter.open_letter(KIM, tmp_path / "f.pouch", sink, jobs=2)
    assert made == []


def test_a_fork_that_fails_is_a_file_error_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process limit (EAGAIN from fork) is the user's to act on, with a
    hint, not an internal error; the worker's pipe is closed."""
    import errno

    def no_fork() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    parts: list[tuple[str | None, bytes]] = [(None, _pseudo_random(9 * MiB, "fork"))]
    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(FileError, match="cannot start a worker process") as e:
        _seal_files(tmp_path, parts, jobs=2)
    assert "POUCH_JOBS=1" in e.value.hints[0]
    assert len(os.listdir("/proc/self/fd")) == before
