"""make bench, paper: printing and scanning 100 KB, and how much a page holds.

Targets: `pouch print` of 100 KB in at most 3 s; `pouch scan` of
100 KB from page images in at most 5 s; at least 15 KB a page read from
simulated 12-megapixel phone photographs (phone density) and 35 KB a page
from 300 dpi renders (scanner density).

Beside pouch, in the same run, the stock QR tools on the same codes:
qrencode (libqrencode, C) making each code as a PNG, as qr-backup does, and
zbarimg (zbar, C, with -Sbinary) reading the same page images. They do less
than pouch (no layout, no PDF, no erasure decoding, no digest, no worker
process), so the ratio is what the rest costs. qr-backup's and
paperbackup's densities are quoted from their documentation: neither is
packaged where this runs.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import POUCH, bench_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import paperlab as lab

from pouch import age
from pouch.age.x25519 import X25519Identity
from pouch.paper import DENSITIES, codes, layout

RUNS = 5
SIZE = 100_000


def _age_file(path: Path, plaintext: int) -> None:
    """A real age file of about plaintext bytes: pouch prints any container
    it opens, a bare age file included."""
    import os

    with open(path, "wb") as f:
        age.encrypt(io.BytesIO(os.urandom(plaintext)), f, [X25519Identity.generate().recipient])


def _wall(args: list[str | Path], before: Callable[[], None]) -> float:
    """Median wall time of RUNS runs of args, before() ahead of each."""
    times = []
    for _ in range(RUNS):
        before()
        start = time.perf_counter()
        subprocess.run([str(a) for a in args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _stock_encode(work: Path, cut: list[bytes]) -> float:
    """qrencode making every code as a PNG, one process a code."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for i, code in enumerate(cut):
            subprocess.run(["qrencode", "-8", "-l", "L", "-o", str(work / f"q{i}.png")],
                           input=code, check=True, capture_output=True)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _stock_decode(pages: list[Path], expected: int) -> tuple[float, int]:
    """zbarimg reading the page images (binary payloads kept whole); the
    bytes it read, against what the codes hold."""
    times, got = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        done = subprocess.run(["zbarimg", "--raw", "-q", "-Sbinary", *map(str, pages)],
                              capture_output=True, check=False)  # fmt: skip
        times.append(time.perf_counter() - start)
        got = len(done.stdout)
    return statistics.median(times), got * 100 // max(expected, 1)


def _rm(path: Path) -> Callable[[], None]:
    """Removes the output a run left, so that the next may write it."""

    def remove() -> None:
        path.unlink(missing_ok=True)

    return remove


def main() -> None:
    import shutil

    work = bench_dir()
    rows: list[str] = []
    try:
        letter = work / "letter.age"
        _age_file(letter, SIZE)
        size = letter.stat().st_size
        for name in ("phone", "scanner"):
            d = DENSITIES[name]
            pdf, pages_dir, out = work / f"{name}.pdf", work / f"{name}-pages", work / "back"
            printing = _wall([POUCH, "print", letter, "-o", pdf, "--density", name],
                             before=_rm(pdf))  # fmt: skip
            subprocess.run([POUCH, "print", letter, "-o", work / f"{name}-x.pdf", "--density", name,
                            "--png", pages_dir], check=True, capture_output=True)  # fmt: skip
            pages = sorted(pages_dir.iterdir())
            scanning = _wall([POUCH, "scan", *pages, "-o", out], before=_rm(out))
            assert out.read_bytes() == letter.read_bytes()
            cut = codes.encode(letter.read_bytes(), d.share_max, d.per_page)
            stock_print = _stock_encode(work, cut)
            stock_scan, read = _stock_decode(pages, sum(len(c) for c in cut))
            rows.append(
                f"| {size / 1000:.0f} KB, {name} density ({len(pages)} pages, {len(cut)} codes) "
                f"| {printing:.2f} s | {stock_print:.2f} s | {printing / stock_print:.1f}x "
                f"| {scanning:.2f} s | {stock_scan:.2f} s ({read}% read) "
                f"| {scanning / stock_scan:.1f}x |"
            )
        # From photographs: the phone density's own case.
        photos_dir = work / "photos"
        photos_dir.mkdir()
        fine = layout.render((work / "phone.pdf").read_bytes(), dpi=400)
        photos = []
        for i, page in enumerate(fine):
            photos.append(photos_dir / f"IMG_{i}.jpg")
            photos[-1].write_bytes(lab.photograph(page, i))
        out = work / "back"
        from_photos = _wall([POUCH, "scan", *photos, "-o", out], before=_rm(out))
        assert out.read_bytes() == letter.read_bytes()
        density = _density(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| 100 KB on paper | `pouch print` | qrencode, the same codes | time, pouch / stock "
        "| `pouch scan`, 300 dpi pages | zbarimg, the same pages | time, pouch / stock |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"| {size / 1000:.0f} KB from {len(photos)} simulated 12-megapixel photos (phone) "
          f"| | | | {from_photos:.2f} s | | |")  # fmt: skip
    print()
    print("| density | a full page holds | read back from | target |")
    print("|---|---:|---|---:|")
    print("\n".join(density))
    print("| qr-backup (default, its documentation) | 3 to 4 KB | | |")
    print("| paperbackup (its documentation) | under 1 KB | | |")


def _density(work: Path) -> list[str]:
    """Two full pages of each density, read back from what that density is
    for: photographs for phone, 300 dpi renders for scanner."""
    rows = []
    for name, target, source in (("phone", 15_000, "photos"), ("scanner", 35_000, "300 dpi")):
        d = DENSITIES[name]
        per_page = d.per_page * 3 // 4 * d.share_max  # k on a full page, times the share
        container = work / f"full-{name}.age"
        # The age header and tags cost about 250 bytes; aim just under two pages.
        _age_file(container, 2 * per_page - codes.PREFIX.size - 400)
        pdf = work / f"full-{name}.pdf"
        subprocess.run([POUCH, "print", container, "-o", pdf, "--density", name],
                       check=True, capture_output=True)  # fmt: skip
        if name == "phone":
            images = [lab.photograph(p, i) for i, p in enumerate(layout.render(
                pdf.read_bytes(), dpi=400))]  # fmt: skip
        else:
            images = [lab.png(p) for p in layout.render(pdf.read_bytes())]
        paths = []
        for i, image in enumerate(images):
            paths.append(work / f"full-{name}-{i}.img")
            paths[-1].write_bytes(image)
        out = work / f"full-{name}.back"
        done = subprocess.run([POUCH, "scan", *paths, "-o", out], capture_output=True)
        ok = done.returncode == 0 and out.read_bytes() == container.read_bytes()
        held = container.stat().st_size / len(paths)
        rows.append(
            f"| {name} ({len(paths)} pages) | {held / 1000:.1f} KB a page "
            f"| {source}{'' if ok else ' (FAILED)'} | {target / 1000:.0f} KB |"
        )
    return rows


if __name__ == "__main__":
    main()
