"""The paper codes (SPEC.md section 7): cutting, erasure coding, parsing and
reassembly, on bytes. The images and the CLI are in test_cli_paper.py."""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pouch.errors import PaperError
from pouch.paper import DENSITIES, codes
from tests.vectors.generate import PAPER, paper_vectors

PHONE = DENSITIES["phone"]
LETTER = Path(__file__).resolve().parent / "vectors" / "letters" / "trump_to_kim.pouch"


def _letter(raws: list[bytes]) -> codes.Letter:
    collection = codes.Collection()
    collection.extend(raws)
    assert not collection.damaged and not collection.foreign
    (letter,) = collection.letters.values()
    return letter


def _split(stream: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(stream):
        n = int.from_bytes(stream[pos : pos + 2], "big")
        out.append(stream[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def test_the_vector_is_the_generator_output_and_reassembles() -> None:
    on_disk = {p.name: p.read_bytes() for p in PAPER.iterdir()}
    assert on_disk == dict(paper_vectors()), "regenerate with python -m tests.vectors.generate"
    summary = json.loads(on_disk["trump_to_kim.json"])
    cut = _split(on_disk["trump_to_kim.codes"])
    assert len(cut) == summary["m"] == 48 and summary["k"] == 31
    container = LETTER.read_bytes()
    assert codes.digest(container).hex() == summary["digest"]
    # Any k will do: the last k are all but one parity codes.
    assert codes.reassemble(_letter(cut[-summary["k"] :])) == container
    assert codes.reassemble(_letter(cut[: summary["k"]])) == container


def test_the_header_is_as_specified() -> None:
    container = b"a pouch"
    (first, *_) = codes.encode(container, PHONE.share_max, PHONE.per_page)
    magic, version, prefix, index, k, m = struct.unpack_from(">3sB8sHHH", first)
    assert (magic, version, index, k, m) == (b"\x89PQ", 1, 0, 1, 12)
    assert prefix == codes.digest(container)[:8]
    (crc,) = struct.unpack_from(">I", first, 18)
    assert crc == zlib.crc32(first[:18] + first[22:])
    assert first[22:] == struct.pack(">Q", 7) + codes.digest(container) + container


@pytest.mark.parametrize("per_page", [PHONE.per_page, DENSITIES["scanner"].per_page])
def test_a_quarter_of_the_codes_or_of_the_pages_may_be_lost(per_page: int) -> None:
    """The rule of SPEC.md 7.1, for every k it allows: m - k covers a
    quarter of the codes and, the pages being full, a quarter of the pages."""
    for k in range(1, codes.MAX_DATA_CODES + 1):
        cut = codes.encode(bytes(64 * k - codes.PREFIX.size), 64, per_page)
        first = codes.parse(cut[0])
        m = len(cut)
        assert (first.k, first.m) == (k, m)
        assert m - k >= m / 4
        pages = -(-m // per_page)
        assert (pages // 4) * per_page <= m - k
        assert m % per_page == 0 or m == codes.MAX_CODES


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 40_000), seed=st.integers(0, 2**32))
def test_any_quarter_lost_still_reassembles(size: int, seed: int) -> None:
    rnd = random.Random(seed)
    container = rnd.randbytes(size)
    cut = codes.encode(container, 1000, 12)
    k = codes.parse(cut[0]).k
    kept = rnd.sample(cut, len(cut) - len(cut) // 4)
    rnd.shuffle(kept)
    letter = _letter(kept + rnd.sample(kept, min(3, len(kept))))  # duplicates too
    assert len(letter.shares) >= k
    assert codes.reassemble(letter) == container


def test_too_few_codes_say_how_many_more() -> None:
    cut = codes.encode(LETTER.read_bytes(), PHONE.share_max, PHONE.per_page)
    letter = _letter(cut[:24])
    with pytest.raises(PaperError) as e:
        codes.reassemble(letter)
    assert e.value.message == (
        "pages 3 and 4 of 4 of letter e9b3b901… never seen: need 7 more codes (24 of 48 read)"
    )
    # A density the counts do not tell apart is named by codes alone.
    letter.k, letter.m = 40, 60  # 54 codes at least: 5 pages of 12, or 3 of 20
    assert letter.status() == "need 16 more codes of letter e9b3b901…; have 24 of 60"


def test_a_container_too_large_for_paper_is_refused() -> None:
    with pytest.raises(PaperError, match="too large for paper"):
        codes.encode(bytes(codes.max_container(100) + 1), 100, 12)
    assert len(codes.encode(bytes(codes.max_container(100)), 100, 12)) == 256


def _reframe(code: bytes, **changes: int) -> bytes:
    """code with header fields changed and its CRC made right again: what a
    forger, not a smudge, would make."""
    fields = dict(zip(("index", "k", "m"), struct.unpack_from(">HHH", code, 12), strict=True))
    fields.update(changes)
    head = code[:12] + struct.pack(">HHH", fields["index"], fields["k"], fields["m"])
    share = code[22:]
    return head + struct.pack(">I", zlib.crc32(share, zlib.crc32(head))) + share


def test_bad_codes_are_told_apart() -> None:
    (good, *_) = codes.encode(b"x" * 100, 60, 4)
    with pytest.raises(codes.NotACodeError):
        codes.parse(b"https://example.org/")
    flipped = good[:14] + bytes([good[14] ^ 1]) + good[15:]
    with pytest.raises(codes.DamagedCodeError, match="CRC"):
        codes.parse(flipped)
    with pytest.raises(codes.DamagedCodeError, match="impossible"):
        codes.parse(_reframe(good, k=0))
    with pytest.raises(codes.DamagedCodeError, match="impossible"):
        codes.parse(_reframe(good, index=9, m=9, k=10))
    with pytest.raises(codes.DamagedCodeError, match="impossible"):
        codes.parse(_reframe(good, m=257))
    with pytest.raises(codes.DamagedCodeError, match="impossible"):
        codes.parse(_reframe(good, index=4))
    v2 = good[:3] + b"\x02" + good[4:22]
    v2 = v2[:18] + struct.pack(">I", zlib.crc32(good[22:], zlib.crc32(v2[:18])))
    with pytest.raises(codes.DamagedCodeError, match="version 2"):
        codes.parse(v2 + good[22:])


def test_letters_are_kept_apart_and_disagreements_set_aside() -> None:
    a = codes.encode(b"a" * 500, 100, 4)
    b = codes.encode(b"b" * 500, 100, 4)
    collection = codes.Collection()
    collection.extend([*a, *b[:2], b"not ours", _reframe(a[0], k=2, m=3)])
    assert len(collection.letters) == 2
    assert collection.foreign == 1
    (a_letter,) = [x for x in collection.letters.values() if x.codes == len(a)]
    assert collection.set_aside(a_letter) == [
        f"1 code(s) of letter {codes.short(a_letter.prefix)} disagree with the others on "
        "their parameters"
    ]
    # A second, different code at a place already held: both kept.
    other = a[1][:22] + bytes(len(a[1]) - 22)
    collection.add(_reframe(other))
    assert a_letter.contested == 1 and len(a_letter.shares[1]) == 2
    assert codes.reassemble(a_letter) == b"a" * 500


def test_forged_codes_seen_first_do_not_win() -> None:
    """A forger who knows the digest prefix (it is printed on every page)
    and puts codes of their own before the genuine ones: other parameters,
    or another share at a place. The genuine set still reassembles."""
    container = LETTER.read_bytes()
    cut = codes.encode(container, PHONE.share_max, PHONE.per_page)
    small = cut[0][:22] + bytes(40)  # k=1, m=2: a letter of its own, complete
    forged_params = _reframe(small, index=0, k=1, m=2)
    forged_share = _reframe(cut[0][:22] + bytes(len(cut[0]) - 22))
    collection = codes.Collection()
    collection.extend([forged_params, forged_share, *cut])
    (letter,) = collection.letters.values()
    assert (letter.k, letter.m) == (31, 48)
    assert codes.reassemble(letter) == container
    # More forged codes, with other parameters, than the genuine set has.
    many = [_reframe(cut[0][:22] + bytes(len(cut[0]) - 22), index=i, k=31, m=64)
            for i in range(60)]  # fmt: skip
    collection = codes.Collection()
    collection.extend([*many, *cut])
    (letter,) = collection.letters.values()
    assert letter.m == 64  # the forgery holds the most places...
    recovered, used = codes.recover(collection, letter.prefix)
    assert recovered == container and used.m == 48  # ...and is tried, and fails
    # With the genuine code of place 0 lost, the forgery is the only code
    # there; other choices of places find the container.
    collection = codes.Collection()
    collection.extend([forged_share, *cut[1:]])
    (letter,) = collection.letters.values()
    assert letter.contested == 0
    assert codes.reassemble(letter) == container


def test_codes_no_encoder_makes_are_damaged() -> None:
    (good, *_) = codes.encode(b"x" * 100, 60, 4)
    for changes in ({"k": 1, "m": 1}, {"k": 193, "m": 256}, {"k": 3, "m": 3}):
        with pytest.raises(codes.DamagedCodeError, match="impossible"):
            codes.parse(_reframe(good, **changes))
    tiny = _reframe(good[:22] + b"x", index=0, k=1, m=2)  # 1 x 1 byte < the 40-byte prefix
    with pytest.raises(codes.DamagedCodeError, match="impossible"):
        codes.parse(tiny)
    with pytest.raises(codes.DamagedCodeError, match="cut short"):
        codes.parse(good[:10])


def test_a_forged_share_fails_the_digest() -> None:
    container = bytes(range(256)) * 8
    cut = codes.encode(container, 300, 4)
    k = codes.parse(cut[0]).k
    forged = cut[0][:22] + bytes(len(cut[0]) - 22)
    letter = _letter([_reframe(forged), *cut[1:k]])
    with pytest.raises(PaperError, match="does not match their digest"):
        codes.reassemble(letter)


@given(st.binary(max_size=3000))
def test_parse_and_collect_take_any_bytes(raw: bytes) -> None:
    try:
        code = codes.parse(raw)
    except (codes.NotACodeError, codes.DamagedCodeError):
        pass
    else:
        assert 1 <= code.k <= code.m <= codes.MAX_CODES and code.index < code.m
    collection = codes.Collection()
    collection.add(raw)
    for letter in collection.letters.values():
        try:
            codes.reassemble(letter)
        except PaperError:
            pass


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), damage=st.binary(min_size=1, max_size=8))
def test_damaged_codes_never_give_a_wrong_container(seed: int, damage: bytes) -> None:
    """Whatever a code's bytes are changed to, a reassembly either gives
    the container or fails with PaperError."""
    rnd = random.Random(seed)
    container = rnd.randbytes(rnd.randrange(1, 3000))
    cut = codes.encode(container, 200, 4)
    i = rnd.randrange(len(cut))
    pos = rnd.randrange(len(cut[i]))
    cut[i] = cut[i][:pos] + damage + cut[i][pos + len(damage) :]
    collection = codes.Collection()
    collection.extend(cut)
    for letter in collection.letters.values():
        try:
            assert codes.reassemble(letter) == container
        except PaperError:
            pass


@given(st.binary(max_size=2000))
def test_the_workers_answer_is_parsed_strictly(out: bytes) -> None:
    from pouch.paper import reader

    source = reader.Source("x")
    try:
        reader._parse_output(out, source)
    except ValueError:
        return
    assert out.endswith(b"}") and isinstance(source.pages, int)


def test_the_workers_answer_round_trips() -> None:
    from pouch.paper import reader

    summary = b'{"kind":"png","pages":1,"skipped":0}'
    out = b"C\0\0\0\x03abcE" + len(summary).to_bytes(4, "big") + summary
    source = reader.Source("x")
    reader._parse_output(out, source)
    assert (source.codes, source.kind, source.pages) == ([b"abc"], "png", 1)
    for bad in (out + b"C", out[:-1], b"X" + out[1:], out.replace(b"E", b"C", 1)):
        with pytest.raises(ValueError):
            reader._parse_output(bad, reader.Source("x"))
