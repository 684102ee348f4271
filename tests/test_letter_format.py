"""Property tests: the letter and container parsers on any input."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pouch import container
from pouch.errors import LetterError, PouchError
from pouch.identity import Identity, fingerprint
from pouch.letter._format import PREAMBLE, LetterHeader
from pouch.letter._segments import LetterReader
from pouch.letter.order import Block, Mark

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = st.binary(min_size=32, max_size=32)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def headers(draw: st.DrawFn) -> LetterHeader:
    recipients = tuple(draw(st.lists(KEY, min_size=1, max_size=4, unique=True)))
    return LetterHeader(
        sender=draw(KEY),
        recipients=recipients,
        date=draw(st.sampled_from(["2019-01-14T21:00:00Z", "2018-05-24T09:00:00Z"])),
        subject=draw(st.text(max_size=50)),
        in_reply_to=draw(st.none() | HEX64),
        stream=draw(st.text("0123456789abcdef", min_size=32, max_size=32)),
        order_key=draw(KEY),
        blocks={fingerprint(r): draw(st.binary(min_size=560, max_size=560)) for r in recipients},
        kem=draw(st.sampled_from(["mlkem768x25519", "x25519"])),
        padding=draw(st.booleans()),
        decoys=draw(st.integers(0, 10)),
        envelope=draw(KEY),
    )


HEADERS = headers()


@SETTINGS
@given(HEADERS)
def test_letter_header_round_trips(header: LetterHeader) -> None:
    data = header.encode()
    assert LetterHeader.decode(data) == header
    assert LetterHeader.decode(data).encode() == data


@SETTINGS
@given(st.binary(max_size=600))
def test_letter_header_decoder_raises_only_pouch_errors(data: bytes) -> None:
    try:
        LetterHeader.decode(data)
    except PouchError:
        pass


@SETTINGS
@given(HEADERS, st.binary(max_size=400))
def test_letter_reader_raises_only_pouch_errors(header: LetterHeader, tail: bytes) -> None:
    encoded = header.encode()
    plain = PREAMBLE + len(encoded).to_bytes(4, "big") + encoded + tail
    try:
        reader = LetterReader(io.BytesIO(plain))
        for _ in reader.data():
            pass
    except PouchError:
        return
    raise AssertionError("random segments cannot carry valid signatures")


RECORDS = st.lists(
    st.builds(container.Record, type=st.integers(0, 65535), body=st.binary(max_size=100)),
    max_size=5,
)


@SETTINGS
@given(st.binary(max_size=200), RECORDS, st.binary(max_size=20))
def test_container_records_round_trip_and_a_torn_tail_is_ignored(
    age_bytes: bytes, records: list[container.Record], torn: bytes
) -> None:
    data = container.header(len(age_bytes)) + age_bytes
    data += b"".join(container.encode_record(r) for r in records)
    c = container.parse(io.BytesIO(data))
    assert [c.read_record(r) for r in c.records] == records
    assert (c.torn, c.age_length) == (False, len(age_bytes))
    full = container.encode_record(container.Record(1, torn))
    for cut in range(1, len(full)):
        c = container.parse(io.BytesIO(data + full[:cut]))
        assert [c.read_record(r) for r in c.records] == records and c.torn


@SETTINGS
@given(st.binary(min_size=32, max_size=32), RECORDS, st.binary(max_size=20))
def test_a_custody_receipt_round_trips_and_a_torn_one_is_damage(
    envelope: bytes, records: list[container.Record], torn: bytes
) -> None:
    data = container.custody_receipt(envelope.hex(), records)
    c = container.parse(io.BytesIO(data))
    assert [c.read_record(r) for r in c.records] == records
    assert (c.detached, c.age_length, c.bare) == (envelope.hex(), 0, False)
    try:
        c.age_stream()
    except PouchError as e:
        assert "custody receipt" in e.message
    else:
        raise AssertionError("a custody receipt gave a ciphertext")
    full = container.encode_record(container.Record(1, torn))
    for cut in range(1, len(full)):
        try:
            container.parse(io.BytesIO(data + full[:cut]))
        except PouchError as e:
            assert "cut short" in e.message
        else:
            raise AssertionError("a torn custody receipt was accepted")


@SETTINGS
@given(st.binary(max_size=300))
def test_container_parser_raises_only_pouch_errors(data: bytes) -> None:
    receipt = container.custody_receipt("ab" * 32, [])
    for prefix in (b"", container.MAGIC, container.header(len(data) // 2),
                   container.RECEIPT_MAGIC, receipt):  # fmt: skip
        try:
            container.parse(io.BytesIO(prefix + data))
        except PouchError:
            pass


def test_a_complete_oversized_record_is_damage_not_a_tear() -> None:
    big = container.encode_record(container.Record(1, bytes(container.MAX_RECORD + 1)))
    data = container.header(3) + b"age" + big
    try:
        container.parse(io.BytesIO(data))
    except PouchError as e:
        assert "too large" in e.message
    else:
        raise AssertionError("an oversized record was accepted")
    # cut short, the same record is a torn append
    assert container.parse(io.BytesIO(data[:-1])).torn


CARDS = [
    Identity.generate("A", rand=lambda k: b"A" * k).card(),
    Identity.generate("B", rand=lambda k: b"B" * k).card(),
]
BLOCKS = st.builds(
    Block,
    seq=st.integers(1, 2**53 - 1),
    prev=st.none() | HEX64,
    ack=st.none()
    | st.builds(
        Mark,
        st.text("0123456789abcdef", min_size=32, max_size=32),
        st.integers(1, 1000),
        st.none() | HEX64,
    ),
    continues=st.none(),
).filter(lambda b: (b.seq == 1) == (b.prev is None))


@SETTINGS
@given(BLOCKS, st.binary(max_size=8), st.integers(0, 200))
def test_order_blocks_round_trip_and_mutants_fail_cleanly(
    block: Block, junk: bytes, at: int
) -> None:
    data = block.encode()
    assert Block.decode(data) == block
    mutated = data[:at] + junk + data[at + len(junk) :]
    try:
        Block.decode(mutated)
    except LetterError:
        pass


@SETTINGS
@given(st.binary(max_size=2000))
def test_the_transcript_reader_raises_only_pouch_errors(data: bytes) -> None:
    from pouch import transcript

    for raw in (data, _tar_with(data)):
        try:
            transcript.verify(io.BytesIO(raw), CARDS)
        except PouchError:
            pass


def _tar_with(manifest: bytes) -> bytes:
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("pouch-transcript.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return out.getvalue()
