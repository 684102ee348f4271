"""Read the QR codes in one image or PDF: run by pouch scan as a separate
process, with limits, because its input comes from couriers.

    python -I _worker.py < input > records

It is started as a file, not as a module of pouch, so that it imports only
what decoding needs. It limits itself before it reads a byte of input:
address space, CPU time, no files written, no core dump. The parent adds a
wall-clock timeout, and checks everything this process says: a hostile
file that took this process over can lie about what it found, but only
within what pouch.paper.codes accepts anyway.

Output, on stdout: one record per code found,
    b"C" || uint32 length || the code's bytes
then one summary record,
    b"E" || uint32 length || JSON {"kind", "pages", "skipped"}.
A failure is one line on stderr and exit status 3.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from PIL import Image

MEMORY = 1 << 30  # address space: a 100-megapixel JPEG peaks at 440 MiB, a 50-megapixel
# RGB PNG at 420 MiB; a 100-megapixel RGBA PNG does not fit, and says so
CPU_SECONDS = 60
MAX_INPUT = 256 << 20  # bytes
MAX_PIXELS = 100_000_000  # per image or rendered page: a 100-megapixel photo
MAX_PAGES = 200
DPI = 300
RECORD = struct.Struct(">cI")


class InputError(Exception):
    """The input is not something this worker reads; the message says why."""


def _limit() -> tuple[int, int]:
    """Set the limits; the tests can lower them (never raise them), to show
    that each one holds: POUCH_TEST_PAPER_LIMITS=cpu_seconds,memory_mib."""
    memory, cpu = MEMORY, CPU_SECONDS
    lowered = os.environ.get("POUCH_TEST_PAPER_LIMITS")
    if lowered:
        seconds, mib = (int(x) for x in lowered.split(","))
        cpu, memory = min(cpu, seconds), min(memory, mib << 20)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit (the caller names it), SIGKILL a second on.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return cpu, memory


def codes_in(image: Image.Image, *, ours: bool = False) -> list[bytes]:
    """The payloads of the QR codes in image.

    A second pass, on a sharpened copy, runs when the first saw codes it
    could not read: it recovers most of the codes a phone's blur took.
    ours: image is pouch print's own render, upright and at scale, which
    zxing-cpp then reads five times faster without looking for rotated,
    shrunk or inverted codes."""
    import zxingcpp
    from PIL import ImageFilter

    gray = _gray(image)
    found: dict[bytes, None] = {}
    for attempt in range(2):
        if attempt == 1:
            gray = gray.filter(ImageFilter.UnsharpMask(radius=3, percent=300, threshold=0))
        # The pixels as a plain buffer: handed a PIL image, zxing-cpp turns a
        # failure to copy it (out of memory) into a TypeError.
        pixels = memoryview(gray.tobytes()).cast("B", (gray.height, gray.width))
        results = zxingcpp.read_barcodes(
            pixels,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            try_rotate=not ours,
            try_downscale=not ours,
            try_invert=not ours,
            return_errors=True,
        )
        for r in results:
            if r.valid:
                found.setdefault(r.bytes)
        if found and all(r.valid for r in results):
            break
    return list(found)


def _gray(image: Image.Image) -> Image.Image:
    """8-bit gray, whatever the scanner or camera gave: 16-bit and 32-bit
    gray scaled down (converting clips them to white), transparency laid
    on white paper."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        image = image.convert("I")
    if image.mode in ("I", "F"):
        low, high = cast("tuple[float, float]", image.getextrema())
        span = (high - low) or 1.0
        return image.point(lambda v: (v - low) * 255 / span).convert("L")
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def _images(data: bytes) -> Iterator[tuple[str, Image.Image | None]]:
    if data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff"):
        yield from _photo(data)
    elif b"%PDF-" in data[:1024]:
        yield from _pdf(data)
    else:
        raise InputError("not a PNG, JPEG or PDF file")


def _photo(data: bytes) -> Iterator[tuple[str, Image.Image]]:
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
        kind = "png" if image.format == "PNG" else "jpeg"
        image.draft("L", image.size)  # JPEG: decode the gray channel only
        image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InputError(f"the image is larger than {MAX_PIXELS // 1_000_000} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"the image cannot be read: {e}") from None
    yield kind, image


def _pdf(data: bytes) -> Iterator[tuple[str, Image.Image | None]]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise InputError(f"the PDF cannot be read: {e}") from None
    if len(doc) > MAX_PAGES:
        raise InputError(f"the PDF has {len(doc)} pages; pouch reads at most {MAX_PAGES}")
    for i in range(len(doc)):
        # Each page closed before the next is loaded: pdfium keeps what a
        # page parsed until it is, and hostile pages add up.
        page = doc[i]
        try:
            yield "pdf", _render(pdfium, page)
        finally:
            page.close()


def _render(pdfium: Any, page: Any) -> Image.Image | None:
    """The page at DPI, or None if pdfium cannot render it."""
    width, height = page.get_size()  # points
    scale = DPI / 72
    if width * height * scale * scale > MAX_PIXELS:
        # A page the size of a wall: render it smaller, not bigger than
        # the limit (its codes, if any, are then likely lost).
        scale = (MAX_PIXELS / max(width * height, 1.0)) ** 0.5
    try:
        bitmap = page.render(scale=scale, grayscale=True, no_smoothimage=True)
    except pdfium.PdfiumError:
        return None  # skipped; the other pages still count
    try:
        image: Image.Image = bitmap.to_pil().copy()  # its own pixels: the bitmap goes
    finally:
        bitmap.close()
    return image


def _record(tag: bytes, body: bytes) -> None:
    sys.stdout.buffer.write(RECORD.pack(tag, len(body)) + body)


def _input() -> bytes:
    """stdin, up to MAX_INPUT (read in pieces: one read of MAX_INPUT would
    reserve all of it at once)."""
    pieces, size = [], 0
    while size <= MAX_INPUT:
        piece = sys.stdin.buffer.read(1 << 20)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    if size > MAX_INPUT:
        raise InputError(f"the file is larger than {MAX_INPUT >> 20} MiB")
    return b"".join(pieces)


def main() -> int:
    _, memory = _limit()
    summary: dict[str, Any] = {"kind": None, "pages": 0, "skipped": 0}
    try:
        for kind, image in _images(_input()):
            summary["kind"] = kind
            summary["pages"] += 1
            if image is None:
                summary["skipped"] += 1
                continue
            for payload in codes_in(image):
                _record(b"C", payload)
    except InputError as e:
        print(e, file=sys.stderr)
        return 3
    except MemoryError:
        print(f"decoding it needs more than {memory >> 20} MiB of memory", file=sys.stderr)
        return 3
    _record(b"E", json.dumps(summary).encode())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
