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
import selectors
import signal
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import PaperError
from .codes import Collection, Letter, short

WORKER = Path(__file__).with_name("_worker.py")
TIMEOUT = 120.0  # seconds of wall clock per input
MAX_OUTPUT = 64 << 20  # what a worker may send back
MAX_STDERR = 4096  # of its stderr, the tail is kept
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
    # The tests can shorten the timeout, to show that it holds.
    timeout = min(TIMEOUT, float(os.environ.get("POUCH_TEST_PAPER_TIMEOUT") or TIMEOUT))
    try:
        # The worker reads the file itself, as its stdin: this process never
        # holds an input (up to 256 MiB each, one per core) in memory.
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                source.error = "not a regular file; not read"
                return source
            returncode, out, err = _run_worker(f, timeout)
    except OSError as e:
        source.error = f"cannot be read: {e.strerror}"
        return source
    if returncode is None:
        source.error = f"decoding took longer than {timeout:g} s; stopped"
    elif len(out) > MAX_OUTPUT:
        source.error = "the decoder's answer is too long; nothing from it is used"
    elif returncode != 0:
        source.error = _failure(returncode, bytes(err))
    else:
        try:
            _parse_output(bytes(out), source)
        except ValueError:
            source.error = "the decoder's answer is malformed; nothing from it is used"
            source.codes = []
    return source


def _run_worker(stdin: BinaryIO, timeout: float) -> tuple[int | None, bytearray, bytearray]:
    """Run the worker on stdin: its exit status (None if it ran out of
    time and was killed), its stdout (cut, and the worker killed, past
    MAX_OUTPUT) and the tail of its stderr. What a worker taken over by a
    hostile file sends back is bounded here, not trusted to be small."""
    proc = subprocess.Popen(
        [sys.executable, "-I", str(WORKER)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as pipes:
            assert proc.stdout is not None and proc.stderr is not None
            pipes.register(proc.stdout, selectors.EVENT_READ, out)
            pipes.register(proc.stderr, selectors.EVENT_READ, err)
            while pipes.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, out, err
                for key, _ in pipes.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        pipes.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    if len(out) > MAX_OUTPUT:
                        return -signal.SIGKILL, out, err
                    del err[:-MAX_STDERR]
        try:
            return proc.wait(max(deadline - time.monotonic(), 0)), out, err
        except subprocess.TimeoutExpired:
            return None, out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _failure(returncode: int, stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    if returncode == 3 and lines:
        return lines[-1][:300]
    if returncode < 0:
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
