"""Pages: the codes drawn as QR codes on A4, in a PDF (SPEC.md section 7.3).

Each code is a binary-mode QR code made by segno, error correction level L
(segno raises it when the payload leaves room in the same version): losing a
whole code is the erasure coding's business, so the QR code's own correction
is spent on blur and noise, not on tears. Each page says, as text, which
envelope it carries, which page it is, and how to scan it back.

The two densities were chosen by measurement (bench/bench_paper.py, and
tests/test_cli_paper.py on synthetic images):

  phone    version 36, 0.38 mm modules, 3 x 4 codes: about 5 pixels per
           module in a 12-megapixel photo of the page
  scanner  version 40, 0.254 mm modules (3 pixels at 300 dpi), 4 x 5 codes

Codes are placed on the module grid, so that a 300 dpi render puts every
module on whole pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

A4 = (210.0, 297.0)  # mm
TOP = 20.0  # mm kept for the text above the codes
GAP = 4  # modules of white between codes: the quiet zone QR codes need


@dataclass(frozen=True)
class Density:
    name: str
    version: int  # the largest QR version drawn
    capacity: int  # bytes that version holds in byte mode at level L
    module: float  # mm
    cols: int
    rows: int

    @property
    def per_page(self) -> int:
        return self.cols * self.rows

    @property
    def share_max(self) -> int:
        from .codes import HEADER_SIZE

        return self.capacity - HEADER_SIZE


DENSITIES = {
    "phone": Density("phone", 36, 2431, 0.38, 3, 4),
    "scanner": Density("scanner", 40, 2953, 0.254, 4, 5),
}
RENDER_DPI = 300
PER_PROCESS = 8  # codes worth a process of their own


def qr_matrix(payload: bytes, index: int) -> tuple[int, bytes]:
    """One code's modules: its side, and a byte per module (0 dark, 255
    light), row by row."""
    import segno

    # A fixed mask (by index) rather than the best of eight: choosing costs
    # four times the encoding, and a ciphertext has no patterns to avoid.
    qr = segno.make(payload, error="L", mode="byte", micro=False, mask=index % 8)
    return len(qr.matrix), bytes(0 if dark else 255 for row in qr.matrix for dark in row)


def qr_images(codes: list[bytes]) -> list[Image.Image]:
    """Every code as a 1-bit image, one pixel per module, no border.

    segno is pure Python (about 30 ms a code): the codes are shared among
    the cores when there are enough of them to pay for the processes."""
    from PIL import Image

    from .._cores import default_jobs

    indexes = range(len(codes))
    jobs = min(default_jobs(), len(codes) // PER_PROCESS)
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            matrices = list(pool.map(qr_matrix, codes, indexes, chunksize=PER_PROCESS // 2))
    else:
        matrices = list(map(qr_matrix, codes, indexes))
    return [Image.frombytes("L", (n, n), pixels).convert("1") for n, pixels in matrices]


def pages_needed(codes: int, density: Density) -> int:
    return -(-codes // density.per_page)


def make_pdf(codes: list[bytes], density: Density, envelope: str) -> bytes:
    """The PDF of codes, density.per_page to a page, in order."""
    from fpdf import FPDF

    from .codes import HEAD_PREFIX, short

    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creator("pouch")
    # A fixed date: the same codes give the same PDF, and the file does not
    # say when it was printed.
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))
    mod = density.module
    cell = (4 * density.version + 17 + GAP) * mod
    width = density.cols * cell - GAP * mod
    left = round((A4[0] - width) / 2 / mod) * mod
    top = round(TOP / mod) * mod
    total = pages_needed(len(codes), density)
    images = qr_images(codes)
    # The envelope id, as every other command names a pouch; and how pouch
    # scan names these codes when several letters' pages are mixed.
    codes_name = short(codes[0][HEAD_PREFIX]).rstrip("…")  # the core fonts lack "…"
    for page in range(total):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_xy(left, 6)
        pdf.cell(0, 5, f"pouch: sealed letter, envelope {envelope[:12]} (codes {codes_name})")
        pdf.set_xy(left, 6)
        pdf.cell(width, 5, f"page {page + 1} of {total}", align="R")
        pdf.set_font("Courier", "", 8)
        pdf.set_xy(left, 11)
        pdf.cell(0, 4, f"envelope {envelope}")
        pdf.set_font("Helvetica", "", 8)
        pdf.set_xy(left, 15)
        pdf.cell(
            0,
            4,
            "To read it, photograph or scan every page and run: pouch scan IMAGES... -o "
            "letter.pouch (a quarter of the codes may be lost).",
        )
        for slot in range(density.per_page):
            i = page * density.per_page + slot
            if i >= len(codes):
                break
            img = images[i]
            row, col = divmod(slot, density.cols)
            side = img.width * mod
            pdf.image(img, x=left + col * cell, y=top + row * cell, w=side, h=side)
    return bytes(pdf.output())


def render(pdf: bytes, dpi: int = RENDER_DPI) -> list[Image.Image]:
    """Our own PDF's pages as grayscale images (for --png, and the tests).

    Never call this on a PDF from outside: those are read by the scan
    worker, in a subprocess with limits."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        return [
            page.render(scale=dpi / 72, grayscale=True, no_smoothimage=True).to_pil()
            for page in doc
        ]
    finally:
        doc.close()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(RENDER_DPI, RENDER_DPI), optimize=False)
    return out.getvalue()
