"""What happens to paper between the printer and the scanner, simulated on
real page images (renders of the real PDF that pouch print wrote): a phone's
photograph, a torn corner, a coffee stain, a crooked scan, a poor JPEG.

Used by the tests (tests/test_cli_paper.py) and the benchmark
(bench/bench_paper.py). Everything is seeded: the same call gives the same
picture.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

TABLE = 90  # the gray of what lies around the page in a photograph


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gauss-Jordan for the 8x8 perspective system (no numpy here)."""
    n = len(b)
    m = [[*row, v] for row, v in zip(a, b, strict=True)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                m[r] = [x - f * y for x, y in zip(m[r], m[i], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def photograph(
    page: Image.Image,
    seed: int = 0,
    *,
    size: tuple[int, int] = (3000, 4000),  # 12 megapixels, held upright
    fill: float = 0.86,  # how much of the frame the page fills
    keystone: float = 0.07,  # the top edge this much narrower: the phone tilted
    falloff: float = 0.35,  # light lost in the corners
    blur: float = 1.5,  # Gaussian sigma, pixels: focus and shake
    noise: float = 8.0,  # sensor noise, sigma in gray levels
    quality: int = 85,
) -> bytes:
    """A JPEG, as a 12-megapixel phone would take of page lying on a table:
    keystone, light falloff, blur, noise, JPEG compression. page should be
    rendered finer than the photograph (400 dpi), as paper is."""
    rnd = random.Random(seed)
    fw, fh = size
    cx = fw / 2 + rnd.uniform(-0.02, 0.02) * fw
    cy = fh / 2 + rnd.uniform(-0.02, 0.02) * fh
    pw, ph = fw * fill, fh * fill
    top = 1 - keystone
    corners = [
        (cx - pw / 2 * top, cy - ph / 2),
        (cx + pw / 2 * top, cy - ph / 2),
        (cx + pw / 2, cy + ph / 2),
        (cx - pw / 2, cy + ph / 2),
    ]
    w, h = page.size
    rows: list[list[float]] = []
    rhs: list[float] = []
    for (x, y), (u, v) in zip(corners, [(0, 0), (w, 0), (w, h), (0, h)], strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.append(v)
    coefficients = tuple(_solve(rows, rhs))
    shot = page.convert("L").transform(
        size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC, fillcolor=TABLE
    )
    light = Image.radial_gradient("L").resize(size).point(lambda p: 255 - int(p * falloff))
    shot = ImageChops.multiply(shot, light).filter(ImageFilter.GaussianBlur(blur))
    shot = ImageChops.add(shot, Image.effect_noise(size, noise), 1.0, -128)
    return jpeg(shot, quality)


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("L").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tear_corner(page: Image.Image, fraction: float = 0.35) -> Image.Image:
    """The bottom right corner torn off diagonally, fraction of the page's
    width along each edge; the table shows through."""
    out = page.convert("L").copy()
    w, h = out.size
    d = fraction * w
    ImageDraw.Draw(out).polygon([(w, h - d), (w, h), (w - d, h)], fill=TABLE)
    return out


def stain(page: Image.Image, center: tuple[float, float], radius: float) -> Image.Image:
    """A coffee stain: a dark, blotchy disc (center and radius as fractions
    of the page's width and height) that hides what is under it."""
    out = page.convert("L").copy()
    w, h = out.size
    cx, cy, r = center[0] * w, center[1] * h, radius * w
    mask = Image.new("L", out.size, 0)
    draw = ImageDraw.Draw(mask)
    rnd = random.Random(7)
    for _ in range(12):
        dx, dy = rnd.uniform(-0.3, 0.3) * r, rnd.uniform(-0.3, 0.3) * r
        rr = r * rnd.uniform(0.6, 0.8)
        draw.ellipse([cx + dx - rr, cy + dy - rr, cx + dx + rr, cy + dy + rr], fill=255)
    coffee = Image.new("L", out.size, 60)
    return Image.composite(coffee, out, mask.filter(ImageFilter.GaussianBlur(r / 20)))


def rotate(page: Image.Image, degrees: float) -> Image.Image:
    """A page fed crooked into the scanner."""
    return page.convert("L").rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255
    )
