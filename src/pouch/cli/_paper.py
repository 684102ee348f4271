"""pouch print and pouch scan: a pouch on paper and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import cli
from ._progress import Steps, progress

if TYPE_CHECKING:
    from ..paper.codes import Collection, Letter
    from ..paper.reader import Source


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
    from ..container import short_id
    from ..paper import print_file

    steps = Steps()
    with progress("Printing", 1, steps=steps):
        printed = print_file(file, Path(output), density, Path(png_dir) if png_dir else None,
                             steps.step)  # fmt: skip
    n = len(printed.pages)
    click.echo(
        f"Printed {file} to {output}: envelope {short_id(printed.envelope)}, {n} "
        f"page{'s' if n != 1 else ''} of A4, {printed.codes} codes (named {printed.letter} by "
        f"pouch scan), any {printed.needed} of which suffice."
    )
    if png_dir is not None:
        click.echo(f"Wrote {n} PNG page{'s' if n != 1 else ''} (300 dpi) to {png_dir}.")


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
    from ..paper import scan_to

    steps = Steps()
    with progress("Scanning", len(inputs), steps=steps) as finish:

        def listed(sources: list[Source]) -> None:
            finish()
            for source in sources:
                click.echo(source.describe(), err=True)

        scanned, envelope = scan_to(inputs, Path(output), letter, listed, steps.step)
    data, chosen = scanned.container, scanned.letter
    _report_unused(scanned.collection, chosen)
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
