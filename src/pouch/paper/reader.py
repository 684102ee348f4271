"""Reading pages back: each image or PDF is decoded by the worker
(pouch/paper/_worker.py) in a process of its own, with limits; its codes are
checked and sorted by letter here (pouch.paper.codes).

Inputs are decoded in parallel, one process per input, as many at a time as
there are cores: a hostile file costs its own process and nothing else, and
what it fails to give is said with its name.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
MAX_SUMMARY = 1024  # its summary record
KINDS = ("png", "jpeg", "pdf")
_RECORD = struct.Struct(">cI")


@dataclass
class Source:
    """What one input gave."""

    name: str
    kind: str | None = None
    pages: int = 0
    skipped: int = 0  # pages of a PDF that could not be rendered
    codes: list[bytes] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        n = len(self.codes)
        found = f"{n} QR code{'s' if n != 1 else ''}"
        if self.error is not None:
            kept = f" (the {found} read before it stopped are used)" if n else ""
            return f"{self.name}: {self.error}{kept}"
        pages = f", {self.pages} pages" if self.pages > 1 else ""
        skipped = f", {self.skipped} that could not be rendered" if self.skipped else ""
        return f"{self.name}: {found} ({self.kind}{pages}{skipped})"


class _Workers:
    """The worker processes running, so that none outlives pouch scan: when
    scan stops (an error, SIGTERM, Ctrl-C), each is killed with its whole
    process group, and none starts after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped = False

    def start(self, stdin: BinaryIO) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopped:
                return None
            proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER)],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: what it forks dies with it
            )
            self._running.add(proc)
            return proc

    def end(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)
        _kill(proc)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for proc in self._running:
                _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def read(
    paths: Sequence[str],
    jobs: int | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> list[Source]:
    """Decode every input (in parallel: POUCH_JOBS, else one worker per
    core); the sources in the order given. on_progress(done, total) is
    called as inputs are decoded."""
    from .._cores import default_jobs

    jobs = jobs or default_jobs()
    workers = _Workers()
    pool = ThreadPoolExecutor(max_workers=jobs)
    done, counting = 0, threading.Lock()

    def one(path: str) -> Source:
        nonlocal done
        source = _read_one(path, workers)
        if on_progress is not None:
            with counting:
                done += 1
                on_progress(done, len(paths))
        return source

    try:
        return list(pool.map(one, paths))
    finally:
        # Normally nothing is left running; on the way out of an error or a
        # signal, the workers are killed rather than waited for.
        workers.stop()
        pool.shutdown(wait=False, cancel_futures=True)


def _read_one(path: str, workers: _Workers) -> Source:
    source = Source(path)
    # The tests can shorten the timeout, to show that it holds.
    timeout = min(TIMEOUT, float(os.environ.get("POUCH_TEST_PAPER_TIMEOUT") or TIMEOUT))
    try:
        # Opened without blocking (a FIFO would wait for a writer forever)
        # and refused unless it is a regular file. The worker reads it
        # itself, as its stdin: this process holds no input in memory.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        source.error = f"cannot be read: {e.strerror}"
        return source
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        source.error = "not a regular file; not read"
        return source
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        proc = workers.start(f)
        if proc is None:
            source.error = "not read: the scan was stopped"
            return source
        try:
            returncode, out, err = _answer(proc, timeout)
        finally:
            workers.end(proc)
    if len(out) > MAX_OUTPUT:
        source.error = "the decoder's answer is too long; nothing from it is used"
        return source
    if returncode == 0:
        try:
            _parse_output(bytes(out), source)
        except ValueError:
            source.error = "the decoder's answer is malformed; nothing from it is used"
            source.codes = []
        return source
    # It failed (a hostile page, a limit): the codes it read before are
    # used, as any code is, checked against the digest.
    source.codes = _codes_before(bytes(out))
    if returncode is None:
        source.error = f"decoding took longer than {timeout:g} s; stopped"
    else:
        source.error = _failure(returncode, bytes(err))
    return source


def _answer(
    proc: subprocess.Popen[bytes], timeout: float
) -> tuple[int | None, bytearray, bytearray]:
    """The worker's exit status (None if it ran out of time), its stdout
    (cut past MAX_OUTPUT) and the tail of its stderr. What a worker taken
    over by a hostile file sends back is bounded here, not trusted to be
    small."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as pipes:
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


def _printable(text: str) -> str:
    """What a worker says, safe for a terminal: it may be a hostile file's."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _failure(returncode: int, stderr: bytes) -> str:
    lines = [x for x in stderr.decode("utf-8", "replace").strip().splitlines() if x.strip()]
    last = _printable(lines[-1]) if lines else ""
    if returncode == 3 and last:
        return last[:300]
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGXCPU":
            return "decoding it took more than its CPU time; stopped"
        return f"the decoder was stopped ({name}); the file is likely hostile or broken"
    return f"the decoder failed ({last[:200] or 'no message'})"


def _records(out: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    """The worker's records (tag, body, end) as far as they are whole."""
    pos = 0
    while pos + _RECORD.size <= len(out):
        tag, length = _RECORD.unpack_from(out, pos)
        end = pos + _RECORD.size + length
        if end > len(out):
            return
        yield tag, out[pos + _RECORD.size : end], end
        pos = end


def _codes_before(out: bytes) -> list[bytes]:
    """The codes a worker that failed had sent, up to its first torn or
    unknown record."""
    codes = []
    for tag, body, _ in _records(out):
        if tag != b"C":
            break
        codes.append(body)
    return codes


def _parse_output(out: bytes, source: Source) -> None:
    """The worker's records, strictly: codes, then one summary, then nothing
    (out is at most MAX_OUTPUT: _read_one refused more)."""
    for tag, body, end in _records(out):
        if tag == b"C":
            source.codes.append(body)
        elif tag == b"E" and end == len(out) and len(body) <= MAX_SUMMARY:
            try:
                summary = json.loads(body)
            except RecursionError:
                raise ValueError("bad summary") from None
            if not isinstance(summary, dict) or set(summary) != {"kind", "pages", "skipped"}:
                raise ValueError("bad summary")
            kind, pages, skipped = summary["kind"], summary["pages"], summary["skipped"]
            if kind not in KINDS or type(pages) is not int or type(skipped) is not int:
                raise ValueError("bad summary")
            source.kind, source.pages, source.skipped = kind, pages, skipped
            return
        else:
            raise ValueError("unexpected record")
    raise ValueError("no summary, or a torn record")


def collect(sources: Sequence[Source]) -> Collection:
    if all(s.error is not None and not s.codes for s in sources):
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
