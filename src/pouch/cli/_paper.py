"""pouch print and pouch scan: a pouch on paper and back."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import FileError, PaperError, PouchError, RefusedError
from . import cli

if TYPE_CHECKING:
    from ..paper.codes import Collection, Letter
    from ..paper.reader import Source


def _read_container(path: str) -> tuple[bytes, str]:
    """The file's bytes, as they are, and its envelope id: only what pouch
    opens goes on paper, so that what comes back opens too."""
    import io

    from .. import container
    from .._io import read_small
    from ..paper import DENSITIES, codes

    largest = max(codes.max_container(d.share_max) for d in DENSITIES.values())
    data = read_small(path, largest, "paper (carry it as a file)", PaperError)
    envelope = container.load(io.BytesIO(data)).envelope_id()
    return data, envelope


def _refuse_existing(*paths: str | Path) -> None:
    for path in paths:
        if os.path.lexists(path):
            raise RefusedError(f"{path} already exists", "pouch does not overwrite it")


@cli.command("print")
@click.argument("file")
@click.option("-o", "--output", metavar="OUT.pdf", required=True, help="The PDF to write.")
@click.option(
    "--density",
    type=click.Choice(["phone", "scanner"]),
    default="phone",
    show_default=True,
    help="phone: about 21 KB a page, read from photos; scanner: about 44 KB, from 300 dpi scans.",
)
@click.option("--png", "png_dir", metavar="DIR", help="Also write each page as a 300 dpi PNG.")
def print_command(file: str, output: str, density: str, png_dir: str | None) -> None:
    """Lay a pouch out as QR codes on A4 pages, to print and carry.

    Any quarter of the codes may be lost (torn, stained, blurred) and the
    pouch still comes back whole with `pouch scan`. The PDF is read back
    before it is written.
    """
    from ..paper import print_pages
    from ..paper.layout import png

    _refuse_existing(output)
    data, envelope = _read_container(file)
    printed = print_pages(data, envelope, density)
    n = len(printed.pages)
    files = {Path(output): printed.pdf}
    folder = Path(png_dir) if png_dir is not None else None
    if folder is not None:
        if os.path.lexists(folder) and not folder.is_dir():
            raise RefusedError(f"{folder} exists and is not a folder")
        for i, page in enumerate(printed.pages, 1):
            files[folder / f"page-{i:02d}.png"] = png(page)
    _refuse_existing(*files)
    created = folder is not None and not folder.is_dir()
    try:
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FileError(f"cannot create {folder}: {e.strerror}") from None
        _write_all(files)
    except BaseException:
        if created and folder is not None:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    click.echo(
        f"Printed {file} to {output}: {n} page{'s' if n != 1 else ''} of A4, "
        f"{printed.codes} codes of letter {printed.letter}, any {printed.needed} of which suffice."
    )
    if png_dir is not None:
        click.echo(f"Wrote {n} PNG page{'s' if n != 1 else ''} (300 dpi) to {png_dir}.")


def _write_all(files: dict[Path, bytes]) -> None:
    """Write every file, or none: all are staged first, then named."""
    from .._io import StagedFile, publish_all

    staged: list[tuple[StagedFile, Path]] = []
    try:
        for path, data in files.items():
            try:
                staged.append((StagedFile(Path(os.path.realpath(path)).parent), path))
            except OSError as e:
                raise FileError(f"cannot write {path}: {e.strerror}") from None
            staged[-1][0].file.write(data)
        publish_all(staged)
    finally:
        for file, _ in staged:
            file.close()


@cli.command("scan")
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_PDF...")
@click.option("-o", "--output", metavar="FILE", required=True, help="The pouch to write.")
@click.option(
    "--letter",
    metavar="PREFIX",
    help="When codes of several letters are mixed, the one to take (as scan names it).",
)
def scan_command(inputs: tuple[str, ...], output: str, letter: str | None) -> None:
    """Read a printed pouch back from photos, scans and PDFs.

    Pages may come in any order, in any number of files, twice over. Each
    file is decoded in a separate process with limits on memory and time.
    The pouch is written only when it is whole and matches its digest.
    """
    import io

    from .. import container
    from .._io import atomic_output
    from ..paper import scan

    def listed(sources: list[Source]) -> None:
        for source in sources:
            click.echo(source.describe(), err=True)

    _refuse_existing(output)
    scanned = scan(inputs, letter, listed)
    data, chosen = scanned.container, scanned.letter
    _report_unused(scanned.collection, chosen)
    try:
        envelope = container.load(io.BytesIO(data)).envelope_id()
    except PouchError as e:
        raise PaperError(
            "the codes are whole and match their digest, but what they carry is not a pouch",
            e.message,
        ) from None
    with atomic_output(output, replace=False) as f:
        f.write(data)
    click.echo(
        f"Wrote {output}: envelope {envelope}, {len(data)} bytes, from "
        f"{len(chosen.shares)} of {chosen.m} codes (any {chosen.k} suffice)."
    )


def _report_unused(collection: Collection, chosen: Letter) -> None:
    others = [x for x in collection.letters.values() if x.prefix != chosen.prefix]
    for other in others:
        click.echo(f"warning: ignored the codes of another letter: {other.status()}", err=True)
    if collection.damaged:
        click.echo(
            f"warning: ignored {len(collection.damaged)} damaged code(s): "
            f"{'; '.join(sorted(set(collection.damaged))[:3])}",
            err=True,
        )
    for note in collection.set_aside(chosen):
        click.echo(f"warning: {note}", err=True)
    if collection.foreign:
        click.echo(
            f"note: ignored {collection.foreign} QR code(s) that are not pouch codes", err=True
        )
