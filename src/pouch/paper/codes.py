"""The paper codes: a container's bytes cut into QR payloads, with erasure
coding across them (SPEC.md section 7).

    code    = magic(3) "\\x89PQ" || version(1) = 1 || digest prefix(8)
              || uint16 index || uint16 k || uint16 m
              || uint32 CRC-32 of everything before it and the share
              || share
    data    = uint64 container length || digest(32) || container || zeros
    digest  = BLAKE3 of the container, derive_key context DIGEST_CONTEXT

The data is cut into k shares of one size; zfec turns them into m, any k of
which give the data back. m is at least 4k/3, so that any quarter of the
codes may be lost, and is rounded up to fill the last page, since a page has
room for its codes whether they carry data or not.

The digest is of the whole container, trailer included, not the envelope
id: a pouch printed before a handover and again after it has one envelope
and two different sets of pages, whose codes must not mix.

Nothing here touches images: codes go out as bytes (pouch.paper.layout
draws them) and come back as bytes (pouch.paper.reader reads them), and
everything in them is checked here.
"""

from __future__ import annotations

import hmac
import random
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import blake3

from ..errors import PaperError

MAGIC = b"\x89PQ"  # \x89: not text, so that a stray text QR code is not mistaken
VERSION = 1
DIGEST_CONTEXT = "pouch.paper v1 container digest"
HEAD = struct.Struct(">3sB8sHHH")
CRC = struct.Struct(">I")
HEADER_SIZE = HEAD.size + CRC.size  # 22
HEAD_PREFIX = slice(4, 12)  # where a code carries its digest prefix
PREFIX = struct.Struct(">Q32s")  # container length, digest
MAX_CODES = 256  # zfec's limit on m
# k at most 3/4 of MAX_CODES, so that a quarter may still be lost.
MAX_DATA_CODES = MAX_CODES * 3 // 4


def digest(container: bytes) -> bytes:
    return blake3.blake3(container, derive_key_context=DIGEST_CONTEXT).digest()


def short(prefix: bytes) -> str:
    """How a letter's codes are named to a person: the start of the digest
    prefix (pouch scan --letter takes it)."""
    return prefix.hex()[:8] + "…"


@dataclass(frozen=True)
class Code:
    """One parsed code: which letter (digest prefix), which share."""

    prefix: bytes
    index: int
    k: int
    m: int
    share: bytes


def max_container(share_max: int) -> int:
    """The largest container MAX_DATA_CODES shares of share_max hold."""
    return MAX_DATA_CODES * share_max - PREFIX.size


def encode(container: bytes, share_max: int, per_page: int) -> list[bytes]:
    """The codes of container: every share at most share_max bytes, m a
    multiple of per_page where MAX_CODES allows."""
    import zfec

    total = PREFIX.size + len(container)
    k = -(-total // share_max)
    if k > MAX_DATA_CODES:
        raise PaperError(
            f"the pouch is too large for paper: {len(container)} bytes, "
            f"at most {max_container(share_max)} at this density",
            "carry it as a file",
        )
    size = -(-total // k)
    at_least = -(-4 * k // 3)  # so that m - k >= m / 4
    m = min(MAX_CODES, -(-at_least // per_page) * per_page)
    d = digest(container)
    data = PREFIX.pack(len(container), d) + container
    data += bytes(k * size - len(data))
    shares = zfec.Encoder(k, m).encode(tuple(data[i * size : (i + 1) * size] for i in range(k)))
    return [_frame(d[:8], i, k, m, bytes(s)) for i, s in enumerate(shares)]


def _frame(prefix: bytes, index: int, k: int, m: int, share: bytes) -> bytes:
    head = HEAD.pack(MAGIC, VERSION, prefix, index, k, m)
    return head + CRC.pack(zlib.crc32(share, zlib.crc32(head))) + share


class NotACodeError(ValueError):
    """A QR code that is not a pouch paper code (another kind of QR code)."""


class DamagedCodeError(ValueError):
    """A pouch code whose header or CRC does not hold."""


def parse(raw: bytes) -> Code:
    """One code's payload, checked: NotACodeError if it is not ours at all,
    DamagedCodeError if it is ours and does not hold together."""
    if raw[:3] != MAGIC:
        raise NotACodeError("not a pouch code")
    if len(raw) < HEADER_SIZE:
        raise DamagedCodeError("it is cut short")
    _, version, prefix, index, k, m = HEAD.unpack_from(raw)
    if version != VERSION:  # before the CRC: another version may place it elsewhere
        raise DamagedCodeError(f"version {version}; this pouch reads version {VERSION}")
    (crc,) = CRC.unpack_from(raw, HEAD.size)
    share = raw[HEADER_SIZE:]
    if zlib.crc32(share, zlib.crc32(raw[: HEAD.size])) != crc:
        raise DamagedCodeError("its CRC does not match")
    # What no encoder makes (section 7.1): k data codes of at most 192, at
    # least 4k/3 codes in all, room for the 40-byte prefix.
    if (
        not 1 <= k <= MAX_DATA_CODES
        or not -(-4 * k // 3) <= m <= MAX_CODES
        or index >= m
        or k * len(share) < PREFIX.size
    ):
        raise DamagedCodeError(
            f"impossible parameters: index {index}, k {k}, m {m}, {len(share)}-byte share"
        )
    return Code(prefix, index, k, m, share)


@dataclass
class Letter:
    """The codes of one letter found so far: one digest prefix and one set
    of parameters (k, m, share size). Every different share seen at a
    place is kept: the CRC is no signature, and anyone can make a code
    with this prefix, so the first one seen is not trusted over the rest."""

    prefix: bytes
    k: int
    m: int
    size: int
    shares: dict[int, list[bytes]] = field(default_factory=dict)
    codes: int = 0  # every code seen, duplicates included

    @property
    def complete(self) -> bool:
        return len(self.shares) >= self.k

    @property
    def contested(self) -> int:
        """Places held by more than one different share."""
        return sum(len(v) > 1 for v in self.shares.values())

    def status(self) -> str:
        have = len(self.shares)
        if self.complete:
            return f"letter {short(self.prefix)}: {have} of {self.m} codes, enough"
        need = f"need {self.k - have} more code{'s' if self.k - have != 1 else ''}"
        per_page = self.per_page()
        if per_page is None:
            return f"{need} of letter {short(self.prefix)}; have {have} of {self.m}"
        pages = -(-self.m // per_page)
        unseen = [
            p + 1
            for p in range(pages)
            if not any(p * per_page <= i < (p + 1) * per_page for i in self.shares)
        ]
        if not unseen:
            return (
                f"every page of letter {short(self.prefix)} was seen, but codes were lost on "
                f"them: {need} ({have} of {self.m} read)"
            )
        which = ", ".join(map(str, unseen[:-1])) + (" and " if len(unseen) > 1 else "")
        return (
            f"page{'s' if len(unseen) > 1 else ''} {which}{unseen[-1]} of {pages} of letter "
            f"{short(self.prefix)} never seen: {need} ({have} of {self.m} read)"
        )

    def per_page(self) -> int | None:
        """How many codes a page of this letter held: m is k's codes rounded
        up to whole pages of its density (encode), which, in all but a few
        cases, says which density it was. None when it does not say."""
        from .layout import DENSITIES

        at_least = -(-4 * self.k // 3)
        fits = {
            d.per_page
            for d in DENSITIES.values()
            if self.m == min(MAX_CODES, -(-at_least // d.per_page) * d.per_page)
        }
        return fits.pop() if len(fits) == 1 else None


@dataclass
class Collection:
    """Every code scanned, sorted by letter; what was not usable, counted."""

    variants: dict[tuple[bytes, int, int, int], Letter] = field(default_factory=dict)
    foreign: int = 0  # QR codes that are not pouch codes
    damaged: list[str] = field(default_factory=list)

    def add(self, raw: bytes) -> None:
        try:
            code = parse(raw)
        except NotACodeError:
            self.foreign += 1
            return
        except DamagedCodeError as e:
            self.damaged.append(str(e))
            return
        key = (code.prefix, code.k, code.m, len(code.share))
        letter = self.variants.setdefault(key, Letter(*key))
        letter.codes += 1
        held = letter.shares.setdefault(code.index, [])
        if code.share not in held:
            held.append(code.share)

    def extend(self, raws: Iterable[bytes]) -> None:
        for raw in raws:
            self.add(raw)

    @property
    def letters(self) -> dict[bytes, Letter]:
        """One Letter per digest prefix: of the sets of parameters its codes
        claim, a complete one first, then the one holding most places,
        then most codes (recover() tries every complete one)."""
        best: dict[bytes, Letter] = {}
        for letter in self.variants.values():
            held = best.get(letter.prefix)
            if held is None or _rank(letter) > _rank(held):
                best[letter.prefix] = letter
        return best

    def set_aside(self, chosen: Letter) -> list[str]:
        """What a reassembly of chosen leaves out of its letter's codes."""
        notes = [
            f"{x.codes} code(s) of letter {short(x.prefix)} disagree with the others on "
            "their parameters"
            for x in self.variants.values()
            if x.prefix == chosen.prefix and x is not chosen
        ]
        if chosen.contested:
            notes.append(
                f"{chosen.contested} place(s) of letter {short(chosen.prefix)} are claimed "
                "by two different codes"
            )
        return notes


def _rank(letter: Letter) -> tuple[bool, int, int]:
    return letter.complete, len(letter.shares), letter.codes


ATTEMPTS = 16  # choices of k shares tried before a letter is given up as altered


def recover(collection: Collection, prefix: bytes) -> tuple[bytes, Letter]:
    """The container of the letter with this digest prefix, and the codes
    it came from: each complete set of parameters is tried, most places
    first, so that forged codes claiming other parameters, however many,
    cannot hide the genuine set."""
    variants = sorted(
        (x for x in collection.variants.values() if x.prefix == prefix and x.complete),
        key=_rank,
        reverse=True,
    )
    if not variants:
        raise PaperError(collection.letters[prefix].status())
    failure = None
    for letter in variants:
        try:
            return reassemble(letter), letter
        except PaperError as e:
            failure = failure or e
    assert failure is not None
    raise failure


def reassemble(letter: Letter, rand: random.Random | None = None) -> bytes:
    """The container, from k of a letter's codes, checked against the digest
    its codes carry.

    The shares of uncontested places are tried first; when those give the
    wrong digest (a forged code at a place whose own code was lost), other
    choices of k places and of the shares claiming them are tried, up to
    ATTEMPTS in all. A forger can make a scan fail, never make it give
    other bytes: every attempt is checked against the digest."""
    if not letter.complete:
        raise PaperError(letter.status())
    rand = rand or random.Random(0)
    places = sorted(letter.shares)
    sure = [i for i in places if len(letter.shares[i]) == 1]
    unsure = [i for i in places if len(letter.shares[i]) > 1]
    for attempt in range(ATTEMPTS):
        if attempt == 0:
            chosen = (sure + unsure)[: letter.k]
        else:
            chosen = sorted(rand.sample(places, letter.k))
        picked = [(i, rand.choice(letter.shares[i]) if attempt else letter.shares[i][0])
                  for i in chosen]  # fmt: skip
        container = _decode(letter, picked)
        if container is not None:
            return container
        if not unsure and len(places) == letter.k:
            break  # one choice only, and it failed
    raise PaperError(
        f"the codes of letter {short(letter.prefix)} reassemble to something "
        "that does not match their digest",
        "some codes were altered; scan the pages again",
    )


def _decode(letter: Letter, picked: list[tuple[int, bytes]]) -> bytes | None:
    """The container k shares give, or None if it fails its checks."""
    import zfec

    blocks = zfec.Decoder(letter.k, letter.m).decode(
        tuple(s for _, s in picked), tuple(i for i, _ in picked)
    )
    data = b"".join(bytes(b) for b in blocks)
    length, d = PREFIX.unpack_from(data)  # k * size >= PREFIX.size (parse)
    end = PREFIX.size + length
    if end > len(data):
        return None
    container = data[PREFIX.size : end]
    if (
        any(data[end:])
        or not hmac.compare_digest(d[:8], letter.prefix)
        or not hmac.compare_digest(digest(container), d)
    ):
        return None
    return container
