"""Paper: a pouch printed as QR codes on A4, carried by hand, scanned back
(SPEC.md section 7).

    print_pages(container, envelope, density)  the PDF, checked by reading it back
    scan(paths, letter)                        the container, from images and PDFs
    print_file(path, pdf, density, png_dir)    pouch print: a pouch's file to a PDF, PNGs
    scan_to(paths, output, letter)             pouch scan: the container, checked, to a file

Only the container's bytes go on paper: they are sealed and signed already,
so the paper needs no secret and adds no trust. What the paper adds is
erasure coding (pouch.paper.codes), so that torn, stained or missing codes
cost nothing up to a quarter of them, and a digest, so that what is scanned
back is byte for byte what was printed.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FileError, PaperError, PouchError, RefusedError
from . import codes as _codes
from .layout import DENSITIES, Density

if TYPE_CHECKING:
    from PIL import Image

    from .reader import Source

__all__ = [
    "DENSITIES",
    "Density",
    "Printed",
    "Scanned",
    "print_file",
    "print_pages",
    "scan",
    "scan_to",
]


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    pages: list[Image.Image]  # the PDF rendered at layout.RENDER_DPI
    codes: int  # m: codes printed
    needed: int  # k: codes that suffice
    letter: str  # how scan names these codes (digest prefix)
    envelope: str  # the envelope id, which the pages name


@dataclass(frozen=True)
class Scanned:
    container: bytes
    sources: list[Source]
    letter: _codes.Letter
    collection: _codes.Collection


def print_pages(
    container: bytes,
    envelope: str,
    density: str = "phone",
    on_progress: Callable[[int, int], object] | None = None,
) -> Printed:
    """The PDF of container's codes, every page read back and the container
    reassembled from it before it is returned: a layout that cannot be
    read is a bug found here, not by the recipient. on_progress(done,
    total) counts the steps: drawing the PDF, then each page read back."""
    from . import _worker, layout

    d = DENSITIES[density]
    codes = _codes.encode(container, d.share_max, d.per_page)
    steps = 1 + layout.pages_needed(len(codes), d)
    pdf = layout.make_pdf(codes, d, envelope)
    pages = layout.render(pdf)
    if on_progress is not None:
        on_progress(1, steps)
    collection = _codes.Collection()
    for i, page in enumerate(pages, 2):
        collection.extend(_worker.codes_in(page, ours=True))
        if on_progress is not None:
            on_progress(i, steps)
    letter = collection.letters.get(codes[0][_codes.HEAD_PREFIX])
    if letter is None or len(letter.shares) != len(codes) or _codes.reassemble(letter) != container:
        raise PaperError("the printed pages do not read back as the pouch; nothing was written")
    return Printed(pdf, pages, letter.m, letter.k, _codes.short(letter.prefix), envelope)


def scan(
    paths: Sequence[str],
    letter: str | None = None,
    on_read: Callable[[list[Source]], object] | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> Scanned:
    """The container whose codes are in paths (images and PDFs, any order,
    duplicates welcome), checked against its digest. on_read sees what
    each input gave before anything is concluded from it (the CLI lists
    them, so that an error can be traced to a photograph);
    on_progress(done, total) is called as inputs are decoded."""
    from . import reader

    sources = reader.read(paths, on_progress=on_progress)
    if on_read is not None:
        on_read(sources)
    collection = reader.collect(sources)
    container, chosen = _codes.recover(collection, reader.choose(collection, letter).prefix)
    return Scanned(container, sources, chosen, collection)


def print_file(
    source: str | os.PathLike[str],
    output: Path,
    density: str = "phone",
    png_dir: Path | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> Printed:
    """pouch print: the pouch in the file source laid out as a PDF at output
    and, with png_dir, each page as a PNG there. Only a container pouch
    opens goes on paper, as its exact bytes, so that what comes back opens
    too. Every file is written, or none; none is overwritten."""
    from .._io import read_small
    from ..container import load
    from .layout import png

    _refuse_existing(output)
    largest = max(_codes.max_container(d.share_max) for d in DENSITIES.values())
    data = read_small(source, largest, "paper (carry it as a file)", PaperError)
    envelope = load(io.BytesIO(data)).envelope_id()
    printed = print_pages(data, envelope, density, on_progress)
    files = {output: printed.pdf}
    if png_dir is not None:
        if os.path.lexists(png_dir) and not png_dir.is_dir():
            raise RefusedError(f"{png_dir} exists and is not a folder")
        for i, page in enumerate(printed.pages, 1):
            files[png_dir / f"page-{i:02d}.png"] = png(page)
    _refuse_existing(*files)
    created = png_dir is not None and not png_dir.is_dir()
    try:
        if png_dir is not None:
            try:
                png_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FileError(f"cannot create {png_dir}: {e.strerror}") from None
        _write_all(files)
    except BaseException:
        if created and png_dir is not None:
            with contextlib.suppress(OSError):
                png_dir.rmdir()
        raise
    return printed


def scan_to(
    paths: Sequence[str],
    output: Path,
    letter: str | None = None,
    on_read: Callable[[list[Source]], object] | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> tuple[Scanned, str]:
    """pouch scan: the container whose codes are in paths, written to
    output (never over a file) once it is whole, matches its digest, and
    parses as a container; and its envelope id."""
    from .._io import atomic_output
    from ..container import load

    _refuse_existing(output)
    scanned = scan(paths, letter, on_read, on_progress)
    try:
        envelope = load(io.BytesIO(scanned.container)).envelope_id()
    except PouchError as e:
        raise PaperError(
            "the codes are whole and match their digest, but what they carry is not a pouch",
            e.message,
        ) from None
    with atomic_output(output, replace=False) as f:
        f.write(scanned.container)
    return scanned, envelope


def _refuse_existing(*paths: str | Path) -> None:
    for path in paths:
        if os.path.lexists(path):
            raise RefusedError(f"{path} already exists", "pouch does not overwrite it")


def _write_all(files: dict[Path, bytes]) -> None:
    """Write every file, or none: all are staged first, then named."""
    from .._io import StagedFile, publish_all, writing

    staged: list[tuple[StagedFile, Path]] = []
    try:
        for path, data in files.items():
            with writing(path):
                try:
                    staged.append((StagedFile(Path(os.path.realpath(path)).parent), path))
                except OSError as e:
                    raise FileError(f"cannot write {path}: {e.strerror}", errno=e.errno) from None
                staged[-1][0].file.write(data)
                staged[-1][0].file.flush()
        publish_all(staged)
    finally:
        for file, _ in staged:
            file.close()
