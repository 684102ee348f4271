"""Reading pages back: each image or PDF is decoded by the worker
(pouch/paper/_worker.py) in a process of its own, with limits; its codes are
checked and sorted by letter here (pouch.paper.codes).

Inputs are decoded in parallel, one process per input, as many at a time as
there are cores: a hostile file costs its own process and nothing else, and
what it fails to give is said with its name.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PaperError
from .codes import Collection, Letter, short

WORKER = Path(__file__).with_name("_worker.py")
TIMEOUT = 120.0  # seconds of wall clock per input
MAX_INPUT = 256 << 20  # the worker's own limit, checked before it starts
MAX_OUTPUT = 64 << 20  # what a worker may send back
_RECORD = struct.Struct(">cI")


@dataclass
class Source:
    """What one input gave."""

    name: str
    kind: str | None = None
    pages: int = 0
    codes: list[bytes] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.name}: {self.error}"
        pages = f", {self.pages} pages" if self.pages > 1 else ""
        n = len(self.codes)
        return f"{self.name}: {n} QR code{'s' if n != 1 else ''} ({self.kind}{pages})"


def read(paths: Sequence[str], jobs: int | None = None) -> list[Source]:
    """Decode every input (in parallel); the sources in the order given."""
    jobs = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_read_one, paths))


def _read_one(path: str) -> Source:
    source = Source(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as e:
        source.error = f"cannot be read: {e.strerror}"
        return source
    if len(data) > MAX_INPUT:
        source.error = f"larger than {MAX_INPUT >> 20} MiB; not read"
        return source
    # The tests can shorten the timeout, to show that it holds.
    timeout = min(TIMEOUT, float(os.environ.get("POUCH_TEST_PAPER_TIMEOUT") or TIMEOUT))
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(WORKER)],
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        source.error = f"decoding took longer than {timeout:g} s; stopped"
        return source
    if done.returncode != 0:
        source.error = _failure(done.returncode, done.stderr)
        return source
    try:
        _parse_output(done.stdout, source)
    except ValueError:
        source.error = "the decoder's answer is malformed; nothing from it is used"
        source.codes = []
    return source


def _failure(returncode: int, stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    if returncode == 3 and lines:
        return lines[-1][:300]
    if returncode < 0:
        import signal

        name = signal.Signals(-returncode).name
        if name == "SIGXCPU":
            return "decoding it took more than its CPU time; stopped"
        return f"the decoder was stopped ({name}); the file is likely hostile or broken"
    last = lines[-1][:200] if lines else "no message"
    return f"the decoder failed ({last})"


def _parse_output(out: bytes, source: Source) -> None:
    """The worker's records, strictly: codes, then one summary, then nothing."""
    if len(out) > MAX_OUTPUT:
        raise ValueError("too much output")
    pos = 0
    while pos < len(out):
        if pos + _RECORD.size > len(out):
            raise ValueError("truncated record")
        tag, length = _RECORD.unpack_from(out, pos)
        pos += _RECORD.size
        body = out[pos : pos + length]
        if len(body) != length:
            raise ValueError("truncated record")
        pos += length
        if tag == b"C":
            source.codes.append(body)
        elif tag == b"E" and pos == len(out):
            summary = json.loads(body)
            if not isinstance(summary, dict):
                raise ValueError("bad summary")
            kind, pages = summary.get("kind"), summary.get("pages")
            if not (isinstance(kind, str | None) and isinstance(pages, int)):
                raise ValueError("bad summary")
            source.kind, source.pages = kind, pages
            return
        else:
            raise ValueError("unexpected record")
    raise ValueError("no summary")


def collect(sources: Sequence[Source]) -> Collection:
    if all(s.error is not None for s in sources):
        raise PaperError(
            f"none of the {len(sources)} input(s) could be read",
            "give photographs (PNG, JPEG) or PDFs of the printed pages",
        )
    collection = Collection()
    for source in sources:
        collection.extend(source.codes)
    return collection


def choose(collection: Collection, wanted: str | None) -> Letter:
    """The one letter to reassemble: the only one found, or the one whose
    digest prefix starts with wanted. PaperError says what was found when
    that is not one complete letter."""
    letters = list(collection.letters.values())
    if not letters:
        raise PaperError(_nothing(collection), "photograph every page whole, in focus and lit")
    if wanted is not None:
        w = wanted.lower().rstrip("…").rstrip(".")
        letters = [x for x in letters if x.prefix.hex().startswith(w)]
        if len(letters) != 1:
            found = ", ".join(short(x.prefix) for x in collection.letters.values())
            raise PaperError(
                f"{'no' if not letters else 'more than one'} letter's codes start with "
                f"{wanted!r}; found {found}"
            )
    elif len(letters) > 1:
        listed = "; ".join(x.status() for x in letters)
        raise PaperError(
            f"these images hold the codes of {len(letters)} different letters, kept "
            f"apart: {listed}",
            "scan one letter's pages at a time, or choose one with --letter",
        )
    letter = letters[0]
    if not letter.complete:
        raise PaperError(letter.status(), "scan the missing pages, or sharper photos of them")
    return letter


def _nothing(collection: Collection) -> str:
    if collection.damaged:
        n = len(collection.damaged)
        return (
            f"no usable pouch codes: {n} damaged ({'; '.join(sorted(set(collection.damaged))[:3])})"
        )
    if collection.foreign:
        return f"no pouch codes: the {collection.foreign} QR code(s) found are of another kind"
    return "no QR codes were found in these images"
