"""Paper: a pouch printed as QR codes on A4, carried by hand, scanned back
(SPEC.md section 7).

    print_pages(container, envelope, density)  the PDF, checked by reading it back
    scan(paths, letter)                        the container, from images and PDFs

Only the container's bytes go on paper: they are sealed and signed already,
so the paper needs no secret and adds no trust. What the paper adds is
erasure coding (pouch.paper.codes), so that torn, stained or missing codes
cost nothing up to a quarter of them, and a digest, so that what is scanned
back is byte for byte what was printed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PaperError
from . import codes as _codes
from .layout import DENSITIES, Density

if TYPE_CHECKING:
    from PIL import Image

    from .reader import Source

__all__ = ["DENSITIES", "Density", "Printed", "Scanned", "print_pages", "scan"]


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    pages: list[Image.Image]  # the PDF rendered at layout.RENDER_DPI
    codes: int  # m: codes printed
    needed: int  # k: codes that suffice
    letter: str  # how scan names these codes (digest prefix)


@dataclass(frozen=True)
class Scanned:
    container: bytes
    sources: list[Source]
    letter: _codes.Letter
    collection: _codes.Collection


def print_pages(container: bytes, envelope: str, density: str = "phone") -> Printed:
    """The PDF of container's codes, every page read back and the container
    reassembled from it before it is returned: a layout that cannot be
    read is a bug found here, not by the recipient."""
    from . import _worker, layout

    d = DENSITIES[density]
    codes = _codes.encode(container, d.share_max, d.per_page)
    pdf = layout.make_pdf(codes, d, envelope)
    pages = layout.render(pdf)
    collection = _codes.Collection()
    for page in pages:
        collection.extend(_worker.codes_in(page, ours=True))
    letter = collection.letters.get(codes[0][_codes.HEAD_PREFIX])
    if letter is None or len(letter.shares) != len(codes) or _codes.reassemble(letter) != container:
        raise PaperError("the printed pages do not read back as the pouch; nothing was written")
    return Printed(pdf, pages, letter.m, letter.k, _codes.short(letter.prefix))


def scan(
    paths: Sequence[str],
    letter: str | None = None,
    on_read: Callable[[list[Source]], object] | None = None,
) -> Scanned:
    """The container whose codes are in paths (images and PDFs, any order,
    duplicates welcome), checked against its digest. on_read sees what
    each input gave before anything is concluded from it (the CLI lists
    them, so that an error can be traced to a photograph)."""
    from . import reader

    sources = reader.read(paths)
    if on_read is not None:
        on_read(sources)
    collection = reader.collect(sources)
    container, chosen = _codes.recover(collection, reader.choose(collection, letter).prefix)
    return Scanned(container, sources, chosen, collection)
