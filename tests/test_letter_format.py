"""Property tests: the letter and container parsers on any input."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pouch import container
from pouch.errors import PouchError
from pouch.letter import PREAMBLE, LetterHeader, LetterReader

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = st.binary(min_size=32, max_size=32)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)

HEADERS = st.builds(
    LetterHeader,
    sender=KEY,
    recipients=st.lists(KEY, min_size=1, max_size=4, unique=True).map(tuple),
    date=st.just("2019-01-14T21:00:00Z"),
    subject=st.text(max_size=50),
    in_reply_to=st.none() | HEX64,
    stream=st.text("0123456789abcdef", min_size=32, max_size=32),
    seq=st.dictionaries(HEX64, st.integers(1, 2**40), max_size=3),
    kem=st.sampled_from(["mlkem768x25519", "x25519"]),
    padding=st.booleans(),
    decoys=st.integers(0, 10),
    envelope=KEY,
)


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
    assert (c.records, c.torn, c.age_length) == (records, False, len(age_bytes))
    full = container.encode_record(container.Record(1, torn))
    for cut in range(1, len(full)):
        c = container.parse(io.BytesIO(data + full[:cut]))
        assert c.records == records and c.torn


@SETTINGS
@given(st.binary(max_size=300))
def test_container_parser_raises_only_pouch_errors(data: bytes) -> None:
    for prefix in (b"", container.MAGIC, container.header(len(data) // 2)):
        try:
            container.parse(io.BytesIO(prefix + data))
        except PouchError:
            pass
