"""Progress bars for long work, drawn on stderr at a terminal.

The library reports nothing while it works (its workers are processes of
their own); the bar watches instead what the kernel counts: the bytes this
process and its worker processes have read (/proc/PID/io, rchar). Sealing,
opening, accepting and `pouch age` each read their input once, so those
bytes against the input's size are the work done. print and scan count
their own steps (pages, files) through a callback (Steps).

A bar appears only when stderr is a terminal and the work outlasts AFTER
seconds (a small job shows nothing); commands do not ask for one with
--json, or when their output goes to the terminal. It is drawn by a thread
and removed when the work ends, whatever the outcome.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

AFTER = 1.0  # seconds of work before a bar is drawn
EVERY = 0.1  # seconds between redraws


class Steps:
    """What a command that counts its own steps (pages, files) reports to
    its bar: done, out of the total the bar was made with."""

    def __init__(self) -> None:
        self.done, self.total = 0, 0

    def step(self, done: int, total: int) -> None:
        self.done, self.total = done, total


@contextmanager
def progress(
    what: str,
    total: int | None,
    shown: bool = True,
    ready: Callable[[], bool] = lambda: True,
    steps: Steps | None = None,
) -> Iterator[Callable[[], None]]:
    """A bar named what, for work reading about total bytes (None: unknown,
    no bar), or of total steps counted by steps, if shown and stderr is a
    terminal. Nothing is drawn, and no time counted, until ready() (a
    passphrase prompt is never drawn over). It yields what removes the bar
    before the block ends (before printing anything)."""
    if (
        not shown
        or not total
        or not sys.stderr.isatty()
        or (steps is None and _rchar(os.getpid()) is None)  # no I/O accounting
    ):
        yield lambda: None
        return
    done = threading.Event()
    bar = threading.Thread(target=_draw, args=(what, total, done, ready, steps), daemon=True)

    def finish() -> None:
        done.set()
        bar.join()

    bar.start()
    try:
        yield finish
    finally:
        finish()


def _draw(
    what: str,
    total: int,
    done: threading.Event,
    ready: Callable[[], bool],
    steps: Steps | None,
) -> None:
    reads, waited = _Reads(), 0.0
    while waited < AFTER:  # ready, and still working, for AFTER seconds on end
        if done.wait(EVERY):
            return
        waited = waited + EVERY if ready() else 0.0
    before = _rchar(os.getpid()) or 0
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    reads.skip((_rchar(os.getpid()) or 0) - before)  # reading rich itself is not the work
    counted = MofNCompleteColumn() if steps is not None else DownloadColumn()
    columns = (TextColumn("{task.description}"), BarColumn(), counted, TimeRemainingColumn())
    # Drawn from this thread alone: no refresh thread of rich's own, and
    # sys.stdout and sys.stderr left as they are (workers fork meanwhile).
    with Progress(*columns, console=Console(stderr=True), transient=True, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as bar:  # fmt: skip
        task = bar.add_task(what, total=total)
        while not done.wait(EVERY):
            if steps is not None:
                bar.update(task, completed=steps.done, total=steps.total or total)
            else:
                bar.update(task, completed=min(total, reads.since_start()))
            bar.refresh()


class _Reads:
    """Bytes read by this process and its children since it was made. A
    worker that exited keeps the count it was last seen with."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._start = _rchar(os.getpid()) or 0

    def skip(self, n: int) -> None:
        """Not count n bytes this process read (for itself)."""
        self._start += n

    def since_start(self) -> int:
        for pid in [os.getpid(), *_children()]:
            count = _rchar(pid)
            if count is not None:
                self._seen[pid] = count
        me = os.getpid()
        mine = self._seen.get(me, self._start) - self._start
        return sum(v for p, v in self._seen.items() if p != me) + mine


def _rchar(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            for line in f:
                if line.startswith(b"rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _children() -> list[int]:
    pids = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", "rb") as f:
                pids += [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        pass
    return pids


def size_of(*paths: str | None) -> int | None:
    """The bytes in the regular files among paths (None if none is one): the
    work ahead of a command that reads them."""
    total = 0
    for path in paths:
        if path is None or path == "-":
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total or None
