"""pouch print and pouch scan on real PDFs and images: the PDF pouch print
writes, its pages rendered by pdfium, then damaged, photographed or mixed
up as paper would be (tests/paperlab.py), and scanned back by the real
command, whose workers run zxing-cpp in their own processes."""

from __future__ import annotations

import io
import random
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pouch import age
from pouch.age.x25519 import X25519Identity
from pouch.paper import DENSITIES, codes, layout
from tests import paperlab as lab
from tests.conftest import POUCH, det_rand, pouch, random_bytes
from tests.vectors.generate import vector_identity

LETTER = Path(__file__).resolve().parent / "vectors" / "letters" / "trump_to_kim.pouch"
EXIT_PAPER = 16


class Printed:
    """The letter vector (72 KB) printed at phone density: 4 pages, 48
    codes, any 31 of which suffice."""

    def __init__(self, folder: Path) -> None:
        self.pdf = folder / "letter.pdf"
        r = pouch("print", LETTER, "-o", self.pdf, "--png", folder / "pages")
        assert r.code == 0, r.err
        self.pages = sorted((folder / "pages").iterdir())
        self.images = [Image.open(p) for p in self.pages]


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Printed:
    return Printed(tmp_path_factory.mktemp("printed"))


def _save(folder: Path, name: str, data: bytes | Image.Image) -> Path:
    path = folder / name
    path.write_bytes(lab.png(data) if isinstance(data, Image.Image) else data)
    return path


def _scan_ok(out: Path, *inputs: Path) -> str:
    r = pouch("scan", *inputs, "-o", out)
    assert r.code == 0, r.err
    assert out.read_bytes() == LETTER.read_bytes()
    return r.err


def _scan_fails(out: Path, *inputs: Path) -> str:
    r = pouch("scan", *inputs, "-o", out)
    assert r.code == EXIT_PAPER, r.err
    assert "Traceback" not in r.err
    assert not out.exists() and list(out.parent.glob(".*")) == []
    return r.err


def test_print_lays_out_pages_that_say_what_they_are(printed: Printed) -> None:
    import pypdfium2 as pdfium

    assert [p.name for p in printed.pages] == [f"page-{i:02d}.png" for i in range(1, 5)]
    assert printed.images[0].size == (2481, 3508)  # A4 at 300 dpi
    doc = pdfium.PdfDocument(printed.pdf.read_bytes())
    assert len(doc) == 4
    text = doc[1].get_textpage().get_text_range()
    envelope = "291e4cb86be84bd0ca5dcb14301fd35e6232212f98bfc19809bc778559f2118e"
    assert "page 2 of 4" in text and envelope in text and "e9b3b901" in text
    assert "pouch scan" in text
    # No date of printing in it, and the same pouch prints the same PDF.
    assert b"CreationDate (D:20000101" in printed.pdf.read_bytes()


def test_print_refuses_what_it_cannot_print(tmp_path: Path, printed: Printed) -> None:
    r = pouch("print", printed.pdf, "-o", tmp_path / "x.pdf")
    assert r.code == 5 and "not a pouch" in r.err.lower(), r.err
    r = pouch("print", LETTER, "-o", printed.pdf)
    assert r.code == 10 and "already exists" in r.err
    big = tmp_path / "big.age"
    with open(big, "wb") as f:
        recipient = X25519Identity.generate(det_rand(b"big")).recipient
        age.encrypt(io.BytesIO(random_bytes(600_000)), f, [recipient])
    r = pouch("print", big, "-o", tmp_path / "big.pdf", "--density", "scanner")
    assert r.code == EXIT_PAPER and "too large for paper" in r.err
    assert not (tmp_path / "big.pdf").exists()


def test_the_pdf_and_its_pages_scan_back(tmp_path: Path, printed: Printed) -> None:
    err = _scan_ok(tmp_path / "from-pdf.pouch", printed.pdf)
    assert "48 QR codes (pdf, 4 pages)" in err
    _scan_ok(tmp_path / "from-png.pouch", *printed.pages)
    # And what comes back opens.
    from pouch import letter

    opened = letter.open_letter(
        vector_identity("Kim Jong-un"), tmp_path / "from-pdf.pouch", lambda i: io.BytesIO()
    )
    assert opened.envelope_id.startswith("291e4cb8")


def test_pages_shuffled_duplicated_and_in_several_files(tmp_path: Path, printed: Printed) -> None:
    shuffled = printed.pages[:]
    random.Random(3).shuffle(shuffled)
    _scan_ok(tmp_path / "a.pouch", *shuffled, printed.pages[0], printed.pdf)


def test_one_page_of_four_missing(tmp_path: Path, printed: Printed) -> None:
    _scan_ok(tmp_path / "a.pouch", printed.pages[0], printed.pages[1], printed.pages[3])
    err = _scan_fails(tmp_path / "b.pouch", printed.pages[0], printed.pages[3])
    assert (
        "error: pages 2 and 3 of 4 of letter e9b3b901… never seen: need 7 more codes "
        "(24 of 48 read)" in err
    )


@pytest.mark.parametrize(
    "damage",
    ["torn corner", "stain", "3 degrees", "jpeg 30"],
)
def test_damage_within_the_budget(tmp_path: Path, printed: Printed, damage: str) -> None:
    pages = []
    for i, page in enumerate(printed.images):
        if damage == "torn corner" and i == 0:
            pages.append(_save(tmp_path, "p0.png", lab.tear_corner(page)))
        elif damage == "stain" and i == 1:
            pages.append(_save(tmp_path, "p1.png", lab.stain(page, (0.5, 0.4), 0.12)))
        elif damage == "3 degrees":
            pages.append(_save(tmp_path, f"p{i}.png", lab.rotate(page, 3 if i % 2 else -3)))
        elif damage == "jpeg 30":
            pages.append(_save(tmp_path, f"p{i}.jpg", lab.jpeg(page, 30)))
        else:
            pages.append(printed.pages[i])
    err = _scan_ok(tmp_path / "out.pouch", *pages)
    if damage in ("torn corner", "stain"):
        assert "11 QR codes" in err  # the damage did cost a code


def test_damage_beyond_the_budget_says_what_is_missing(tmp_path: Path, printed: Printed) -> None:
    torn = [
        _save(tmp_path, f"p{i}.png", lab.tear_corner(lab.stain(page, (0.3, 0.3), 0.15), 0.75))
        for i, page in enumerate(printed.images)
    ]
    err = _scan_fails(tmp_path / "out.pouch", *torn)
    assert "every page of letter e9b3b901… was seen, but codes were lost" in err
    assert "more codes (" in err and "of 48 read)" in err


def test_phone_density_from_simulated_photographs(tmp_path: Path, printed: Printed) -> None:
    """At least 15 KB a page, read from 12-megapixel photographs of it
    (keystone, light falloff, blur, noise, JPEG 85)."""
    fine = layout.render(printed.pdf.read_bytes(), dpi=400)
    photos = [_save(tmp_path, f"IMG_{i}.jpg", lab.photograph(p, i)) for i, p in enumerate(fine)]
    assert Image.open(photos[0]).size == (3000, 4000)
    _scan_ok(tmp_path / "out.pouch", *photos)
    assert LETTER.stat().st_size / len(photos) >= 15_000  # 18 KB a page


def test_scanner_density_from_300_dpi_renders(tmp_path: Path) -> None:
    """At least 35 KB a page, read from the PDF rendered at 300 dpi: two
    full pages carry a pouch of 87 KB."""
    pouch_file = tmp_path / "full.age"
    with open(pouch_file, "wb") as f:
        recipient = X25519Identity.generate(det_rand(b"dense")).recipient
        age.encrypt(io.BytesIO(random_bytes(87_500)), f, [recipient])
    r = pouch("print", pouch_file, "-o", tmp_path / "d.pdf", "--density", "scanner",
              "--png", tmp_path / "pages")  # fmt: skip
    assert r.code == 0, r.err
    assert "2 pages of A4, 40 codes" in r.out.decode()
    pages = sorted((tmp_path / "pages").iterdir())
    r = pouch("scan", *pages, "-o", tmp_path / "back.age")
    assert r.code == 0, r.err
    assert (tmp_path / "back.age").read_bytes() == pouch_file.read_bytes()
    assert pouch_file.stat().st_size / len(pages) >= 35_000


# --- bad input ---------------------------------------------------------------


def test_images_with_no_codes(tmp_path: Path) -> None:
    blank = _save(tmp_path, "blank.png", Image.new("L", (1000, 1400), 255))
    err = _scan_fails(tmp_path / "out.pouch", blank)
    assert "blank.png: 0 QR codes (png)" in err
    assert "error: no QR codes were found in these images" in err
    import segno

    url = tmp_path / "url.png"
    segno.make("https://example.org/").save(url, scale=8)
    err = _scan_fails(tmp_path / "out.pouch", url)
    assert "error: no pouch codes: the 1 QR code(s) found are of another kind" in err
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    err = _scan_fails(tmp_path / "out.pouch", text)
    assert "notes.txt: not a PNG, JPEG or PDF file" in err
    assert "error: none of the 1 input(s) could be read" in err


def test_two_letters_mixed_are_kept_apart(tmp_path: Path, printed: Printed) -> None:
    other = tmp_path / "other.age"
    with open(other, "wb") as f:
        age.encrypt(io.BytesIO(b"another letter"), f, [X25519Identity.generate().recipient])
    assert pouch("print", other, "-o", tmp_path / "other.pdf").code == 0
    err = _scan_fails(tmp_path / "out.pouch", printed.pdf, tmp_path / "other.pdf")
    assert "hold the codes of 2 different letters, kept apart" in err
    assert "letter e9b3b901…: 48 of 48 codes, enough" in err
    assert "choose one with --letter" in err
    r = pouch("scan", printed.pdf, tmp_path / "other.pdf", "-o", tmp_path / "a.pouch",
              "--letter", "e9b3b901")  # fmt: skip
    assert r.code == 0, r.err
    assert "warning: ignored the codes of another letter" in r.err
    assert (tmp_path / "a.pouch").read_bytes() == LETTER.read_bytes()
    r = pouch("scan", printed.pdf, "-o", tmp_path / "b.pouch", "--letter", "00000000")
    assert r.code == EXIT_PAPER and "no letter's codes start with" in r.err


def _page_of(raws: list[bytes]) -> Image.Image:
    """Codes that pouch did not make, drawn on a page as pouch would."""
    phone = DENSITIES["phone"]
    return layout.render(layout.make_pdf(raws, phone, "f" * 64))[0]


def test_corrupted_code_headers(tmp_path: Path) -> None:
    phone = DENSITIES["phone"]
    cut = codes.encode(b"a small pouch" * 40, phone.share_max, phone.per_page)
    bad_crc = [c[:14] + bytes([c[14] ^ 0xFF]) + c[15:] for c in cut]
    err = _scan_fails(tmp_path / "out.pouch", _save(tmp_path, "crc.png", _page_of(bad_crc)))
    assert "error: no usable pouch codes: 12 damaged (its CRC does not match)" in err
    # A forger who fixes the CRC up: the digest catches it.
    forged = []
    for c in cut:
        share = bytes(len(c) - 22)
        forged.append(c[:18] + zlib.crc32(share, zlib.crc32(c[:18])).to_bytes(4, "big") + share)
    err = _scan_fails(tmp_path / "out.pouch", _save(tmp_path, "forged.png", _page_of(forged)))
    assert "reassemble to something that does not match their digest" in err


def test_some_damaged_codes_among_enough_good_ones(tmp_path: Path) -> None:
    phone = DENSITIES["phone"]
    small = io.BytesIO()
    age.encrypt(io.BytesIO(b"a short letter"), small, [X25519Identity.generate().recipient])
    cut = codes.encode(small.getvalue(), phone.share_max, phone.per_page)
    mixed = [c[:20] + bytes([c[20] ^ 1]) + c[21:] if i < 3 else c for i, c in enumerate(cut)]
    out = tmp_path / "out.age"
    r = pouch("scan", _save(tmp_path, "p.png", _page_of(mixed)), "-o", out)
    assert r.code == 0, r.err
    assert "warning: ignored 3 damaged code(s): its CRC does not match" in r.err
    assert out.read_bytes() == small.getvalue()


def test_codes_that_carry_something_else(tmp_path: Path) -> None:
    """Whole codes, matching their digest, of bytes that are not a pouch
    (pouch print would not have made them): nothing is written."""
    phone = DENSITIES["phone"]
    cut = codes.encode(LETTER.read_bytes()[:3000], phone.share_max, phone.per_page)
    out = tmp_path / "out.bin"
    err = _scan_fails(out, _save(tmp_path, "p.png", _page_of(cut)))
    assert "match their digest, but what they carry is not a pouch" in err


def test_a_decompression_bomb_fails_cleanly(tmp_path: Path, printed: Printed) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000), 1).save(bomb, format="PNG")  # 400 megapixels
    assert len(bomb.getvalue()) < 200_000
    path = _save(tmp_path, "bomb.png", bomb.getvalue())
    err = _scan_fails(tmp_path / "out.pouch", path)
    assert "bomb.png: the image is larger than 100 megapixels" in err
    # Beside the real pages, it costs nothing but its own line.
    err = _scan_ok(tmp_path / "ok.pouch", path, printed.pdf)
    assert "bomb.png: the image is larger than 100 megapixels" in err


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from its objects (numbered from 1), with a correct xref."""
    out = b"%PDF-1.7\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def _slow_pdf(operations: int, pages: int = 1) -> bytes:
    """Pages that draw operations rectangles each: a million a second for
    pdfium here. 126 KB keep it busy five seconds a page at 5 million."""
    drawing = zlib.compress(b"0 0 1 1 re f\n" * operations)
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(pages))
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(drawing) + drawing
        + b"\nendstream",
        *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>"] * pages,
    ])  # fmt: skip


def test_hostile_pdfs_fail_cleanly(tmp_path: Path, printed: Printed) -> None:
    garbage = _save(tmp_path, "garbage.pdf", b"%PDF-1.7\n" + random_bytes(5000))
    err = _scan_fails(tmp_path / "out.pouch", garbage)
    assert "garbage.pdf: the PDF cannot be read" in err
    # The limits hold (lowered here, so that the test is quick): CPU time,
    # wall-clock time, memory. Each input fails on its own, with its name.
    slow = _save(tmp_path, "slow.pdf", _slow_pdf(5_000_000))
    out = tmp_path / "out.pouch"
    r = pouch("scan", slow, "-o", out, env={"POUCH_TEST_PAPER_LIMITS": "1,1024"})
    assert r.code == EXIT_PAPER and not out.exists()
    assert "slow.pdf: decoding it took more than its CPU time; stopped" in r.err
    r = pouch("scan", slow, "-o", out, env={"POUCH_TEST_PAPER_TIMEOUT": "1"})
    assert r.code == EXIT_PAPER and "slow.pdf: decoding took longer than 1 s; stopped" in r.err
    photo = _save(tmp_path, "photo.png", printed.images[0])
    r = pouch("scan", photo, "-o", out, env={"POUCH_TEST_PAPER_LIMITS": "60,48"})
    assert r.code == EXIT_PAPER and "Traceback" not in r.err, r.err
    assert "photo.png: decoding it needs more than 48 MiB of memory" in r.err
    # pdfium gives up on a 200 MB drawing within the memory limit by
    # aborting: in-process, that would have ended pouch itself.
    crash = _save(tmp_path, "crash.pdf", _slow_pdf(15_000_000))
    err = _scan_fails(tmp_path / "out.pouch", crash)
    assert "crash.pdf: the decoder was stopped (SIGABRT)" in err
    # The same inputs, beside the real pages, cost nothing but their lines.
    r = pouch("scan", garbage, slow, printed.pdf, "-o", out,
              env={"POUCH_TEST_PAPER_LIMITS": "1,1024"})  # fmt: skip
    assert r.code == 0 and out.read_bytes() == LETTER.read_bytes()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("sys.stdout.buffer.write(b'C' + bytes(4096) * 20000)", "answer is too long"),
        ("sys.stdout.buffer.write(b'C\\xff\\xff\\xff\\xffjunk')", "answer is malformed"),
        ("import time; time.sleep(30)", "decoding took longer than 2 s"),
        ("raise RuntimeError('taken over')", "the decoder failed (RuntimeError: taken over)"),
        ("import os; os.kill(os.getpid(), 40)", "the decoder was stopped (signal 40)"),
        (
            "sys.stdout.buffer.write(b'E' + (1000).to_bytes(4, 'big') + b'[' * 1000)",
            "answer is malformed",
        ),
        ("print('\\x1b[2Jcleared', file=sys.stderr); sys.exit(3)", "?[2Jcleared"),
    ],
)
def test_a_worker_taken_over_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: str, expected: str
) -> None:
    """What if a hostile file took the worker over: it is a process that
    can say anything, for as long as it likes. The caller bounds it."""
    from pouch.paper import reader

    worker = tmp_path / "hostile_worker.py"
    worker.write_text(f"import sys\n{behaviour}\n")
    monkeypatch.setattr(reader, "WORKER", worker)
    monkeypatch.setenv("POUCH_TEST_PAPER_TIMEOUT", "2")
    (source,) = reader.read([str(LETTER)])
    assert source.error is not None and expected in source.error
    assert source.codes == []


def test_codes_read_before_a_worker_died_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PDF whose last page brings pdfium down: its first pages' codes
    still count (checked against the digest like any code)."""
    from pouch.paper import codes as paper_codes
    from pouch.paper import reader

    vector = Path(__file__).resolve().parent / "vectors" / "paper" / "trump_to_kim.codes"
    worker = tmp_path / "dying_worker.py"
    worker.write_text(
        "import os, sys\n"
        f"data = open({str(vector)!r}, 'rb').read()\n"
        "pos = 0\n"
        "while pos < len(data):\n"
        "    n = int.from_bytes(data[pos:pos + 2], 'big')\n"
        "    sys.stdout.buffer.write(b'C' + n.to_bytes(4, 'big') + data[pos + 2:pos + 2 + n])\n"
        "    pos += 2 + n\n"
        "sys.stdout.buffer.write(b'C\\0\\0')  # torn\n"
        "sys.stdout.flush()\n"
        "os.abort()\n"
    )
    monkeypatch.setattr(reader, "WORKER", worker)
    (source,) = reader.read([str(LETTER)])
    assert source.error is not None and "SIGABRT" in source.error
    assert len(source.codes) == 48
    assert "(the 48 QR codes read before it stopped are used)" in source.describe()
    collection = reader.collect([source])
    assert paper_codes.reassemble(reader.choose(collection, None)) == LETTER.read_bytes()


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    """A folder, a device, a FIFO (which would wait for a writer forever)."""
    import os

    from pouch.paper import reader

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sources = reader.read([str(tmp_path), "/dev/zero", str(fifo)])
    assert [s.error for s in sources] == ["not a regular file; not read"] * 3


def test_a_stopped_scan_leaves_no_worker_running(tmp_path: Path) -> None:
    """SIGTERM in the middle of a slow input: pouch scan ends at once, and
    its worker (and anything the worker started) with it."""
    import os
    import signal
    import subprocess
    import time

    slow = _save(tmp_path, "slow.pdf", _slow_pdf(2_000_000, pages=8))  # 14 s of pdfium
    scan = subprocess.Popen([POUCH, "scan", slow, "-o", tmp_path / "x.pouch"],
                            stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(1.5)
    workers = _workers_of(scan.pid)
    assert workers, "the worker should be running"
    began = time.monotonic()
    scan.send_signal(signal.SIGTERM)
    scan.wait(timeout=20)
    assert time.monotonic() - began < 5
    time.sleep(0.2)
    assert not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers)


def _workers_of(parent: int) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_scanners_16_bit_gray_and_transparent_pngs(tmp_path: Path, printed: Printed) -> None:
    page = printed.images[0].convert("L")
    deep = page.point(lambda v: 20 if v < 128 else 230).convert("I").point(lambda v: v * 257)
    deep_path = tmp_path / "gray16.png"
    deep.convert("I;16").save(deep_path)
    assert Image.open(deep_path).mode.startswith("I;16")
    clear = Image.new("LA", page.size, (0, 0))
    clear.putalpha(page.point(lambda v: 255 - v))  # ink opaque, paper transparent
    clear_path = _save(tmp_path, "clear.png", clear)
    r = pouch("scan", deep_path, clear_path, *printed.pages[1:3], "-o", tmp_path / "a.pouch")
    assert r.code == 0, r.err
    assert "gray16.png: 12 QR codes (png)" in r.err and "clear.png: 12 QR codes (png)" in r.err


def test_print_writes_all_of_its_files_or_none(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    r = pouch("print", LETTER, "-o", tmp_path / "o.pdf", "--png", tmp_path / "afile")
    assert r.code == 10 and "is not a folder" in r.err
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "page-03.png").write_text("mine")
    r = pouch("print", LETTER, "-o", tmp_path / "o.pdf", "--png", pages)
    assert r.code == 10 and "page-03.png already exists" in r.err
    r = pouch("print", LETTER, "-o", tmp_path / "o.pdf", "--png", "/proc/no/such/folder")
    assert r.code == 9 and "cannot create /proc/no/such/folder" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "pages"]
    assert [p.name for p in pages.iterdir()] == ["page-03.png"]


def test_scan_does_not_overwrite(tmp_path: Path, printed: Printed) -> None:
    out = tmp_path / "there.pouch"
    out.write_bytes(b"mine")
    r = pouch("scan", printed.pdf, "-o", out)
    assert r.code == 10 and "already exists" in r.err and out.read_bytes() == b"mine"


def test_the_pages_name_the_envelope(tmp_path: Path) -> None:
    """The page, and what print says, name the pouch by its envelope id, as
    every other command does."""
    import json

    import pypdfium2 as pdfium

    envelope = json.loads(pouch("inspect", LETTER, "--json").out)["envelope_id"]
    r = pouch("print", LETTER, "-o", tmp_path / "l.pdf")
    assert r.code == 0, r.err
    said = f"Printed {LETTER} to {tmp_path / 'l.pdf'}: envelope {envelope[:12]}, 4 pages"
    assert r.out.decode().startswith(said) and "48 codes (named e9b3b901" in r.out.decode()
    doc = pdfium.PdfDocument(tmp_path / "l.pdf")
    try:
        text = doc[1].get_textpage().get_text_range()
    finally:
        doc.close()
    assert f"sealed letter, envelope {envelope[:12]} (codes e9b3b901)" in text
    assert "page 2 of 4" in text


def test_scanning_many_pages_shows_a_progress_bar_at_a_terminal(
    tmp_path: Path, printed: Printed
) -> None:
    """Nine files (every page twice, and the PDF): seconds of decoding."""
    from .terminal import Terminal

    inputs = [*printed.pages, *printed.pages, printed.pdf]
    t = Terminal("scan", *inputs, "-o", tmp_path / "a.pouch")
    t.expect(r"Scanning.*/9", timeout=120)
    assert t.wait() == 0, t.text
    assert (tmp_path / "a.pouch").read_bytes() == LETTER.read_bytes()
    assert "Wrote " in t.text and "12 QR codes" in t.text  # the listing, after the bar
