"""Property tests: the header parser and the armor decoder on any input.

No exception escapes but pouch's own, headers round-trip byte for byte, and
hostile inputs are refused in time and memory proportional to their size.
"""

from __future__ import annotations

import base64
import io
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pouch.age import Header, Stanza, parse_header
from pouch.age.armor import ArmoredReader, ArmoredWriter, armor
from pouch.errors import ArmorError, HeaderError

VCHAR = st.characters(min_codepoint=33, max_codepoint=126)
ARG = st.text(VCHAR, min_size=1, max_size=20)
STANZA = st.builds(
    Stanza,
    type=ARG,
    args=st.lists(ARG, max_size=4).map(tuple),
    body=st.binary(max_size=200),
)
HEADER = st.builds(
    Header,
    stanzas=st.lists(STANZA, min_size=1, max_size=5).map(tuple),
    mac=st.binary(min_size=32, max_size=32),
)

# The spec's constants, written out: a test of the parser does not take them
# from the parser.
INTRO = b"age-encryption.org/v1\n"
MAC = b"--- " + b"A" * 43 + b"\n"

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(HEADER)
def test_header_round_trips_byte_for_byte(header: Header) -> None:
    data = header.marshal()
    src = io.BytesIO(data + b"payload")
    parsed = parse_header(src)
    assert parsed == header
    assert parsed.marshal() == data
    assert src.read() == b"payload"  # nothing past the header was consumed


@SETTINGS
@given(st.binary(max_size=2000))
def test_parsed_input_round_trips(data: bytes) -> None:
    # Whatever parses at all re-serialises to exactly the bytes it came from.
    src = io.BytesIO(data)
    try:
        parsed = parse_header(src)
    except HeaderError:
        return
    assert parsed.marshal() == data[: src.tell()]


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    positions = st.integers(0, len(data) - 1)
    return st.one_of(
        st.tuples(positions, st.integers(0, 255)).map(
            lambda t: data[: t[0]] + bytes([t[1]]) + data[t[0] + 1 :]
        ),
        positions.map(lambda i: data[:i]),
        positions.map(lambda i: data[:i] + data[i + 1 :]),
        st.tuples(positions, st.binary(min_size=1, max_size=8)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]
        ),
    )


@SETTINGS
@given(st.data())
def test_mutated_headers_fail_only_with_header_errors(data: st.DataObject) -> None:
    header = data.draw(HEADER)
    raw = data.draw(_mutations(header.marshal()))
    src = io.BytesIO(raw)
    try:
        parsed = parse_header(src)
    except HeaderError:
        return
    assert parsed.marshal() == raw[: src.tell()]


def _with_body_line(line: bytes) -> bytes:
    """A header with one stanza whose body is this one (short) line."""
    return INTRO + b"-> X\n" + line + b"\n" + MAC


@SETTINGS
@given(st.binary(max_size=47))
def test_stanza_bodies_are_canonical_unpadded_base64(data: bytes) -> None:
    encoded = base64.b64encode(data).rstrip(b"=")
    assert parse_header(io.BytesIO(_with_body_line(encoded))).stanzas[0].body == data
    if len(data) % 3:
        with pytest.raises(HeaderError):
            parse_header(io.BytesIO(_with_body_line(base64.b64encode(data))))


@pytest.mark.parametrize("bad", [b"QQ", b"QR", b"Q", b"QUJD=", b"QU JD", b"QUJ\r"])
def test_non_canonical_stanza_bodies_are_refused(bad: bytes) -> None:
    if bad == b"QQ":
        assert parse_header(io.BytesIO(_with_body_line(bad))).stanzas[0].body == b"A"
        return
    with pytest.raises(HeaderError):
        parse_header(io.BytesIO(_with_body_line(bad)))


def test_hostile_headers_fail_fast() -> None:
    cases = {
        "endless line": INTRO + b"-> X25519 " + b"A" * (640 * 1024),
        "endless body": INTRO + b"-> a\n" + (b"A" * 64 + b"\n") * 400_000,
        "many stanzas": INTRO + b"-> a\n\n" * 3_000_000,
        "too large": INTRO + (b"-> a\n" + (b"A" * 64 + b"\n") * 1000 + b"\n") * 300,
    }
    for name, data in cases.items():
        t = time.perf_counter()
        with pytest.raises(HeaderError):
            parse_header(io.BytesIO(data))
        assert time.perf_counter() - t < 2, name


def test_stanza_body_lines_are_64_columns_and_end_short() -> None:
    for n in (0, 47, 48, 49, 96):
        s = Stanza("t", (), bytes(n)).marshal().split(b"\n")
        body_lines = s[1:-1]
        assert all(len(line) == 64 for line in body_lines[:-1])
        assert len(body_lines[-1]) < 64


# --- armor -------------------------------------------------------------------


def dearmor(data: bytes) -> bytes:
    return io.BufferedReader(ArmoredReader(io.BytesIO(data))).read()  # type: ignore[arg-type]


@SETTINGS
@given(st.binary(max_size=5000), st.lists(st.integers(1, 300), max_size=30))
def test_armor_round_trips(data: bytes, cuts: list[int]) -> None:
    out = io.BytesIO()
    with ArmoredWriter(out) as w:
        pos = 0
        for c in cuts:
            w.write(data[pos : pos + c])
            pos += c
        w.write(data[pos:])
    text = out.getvalue()
    assert text == armor(data)
    lines = text.split(b"\n")
    assert all(len(line) <= 64 for line in lines[1:-2])
    assert all(len(line) == 64 for line in lines[1:-3])
    assert dearmor(text) == data
    assert dearmor(text.replace(b"\n", b"\r\n")) == data
    assert dearmor(b"\n \t\n" + text + b"\n\n  ") == data


@SETTINGS
@given(st.binary(max_size=3000))
def test_armor_decoder_raises_only_armor_errors(data: bytes) -> None:
    try:
        dearmor(data)
    except ArmorError:
        pass


@SETTINGS
@given(st.data())
def test_mutated_armor_fails_cleanly_or_is_canonical(data: st.DataObject) -> None:
    payload = data.draw(st.binary(min_size=1, max_size=400))
    text = armor(payload)
    mutated = data.draw(_mutations(text))
    assume(mutated != text)
    try:
        out = dearmor(mutated)
    except ArmorError:
        return
    # Armor carries no integrity (the age MAC and tags do), but the strict
    # parser admits one spelling per content: what decodes re-armors to the
    # same text, up to CRLF line ends and whitespace around the block.
    normal = mutated.replace(b"\r\n", b"\n").strip(b" \t\n\r\x0b\x0c") + b"\n"
    assert armor(out) == normal


def test_armor_refuses_too_much_whitespace() -> None:
    text = armor(b"x")
    with pytest.raises(ArmorError, match="leading whitespace"):
        dearmor(b"\n" * 2000 + text)
    with pytest.raises(ArmorError, match="whitespace after"):
        dearmor(text + b" " * 2000)


def test_a_header_needs_a_stanza() -> None:
    data = INTRO + MAC
    with pytest.raises(HeaderError, match="no recipient stanzas"):
        parse_header(io.BytesIO(data))
