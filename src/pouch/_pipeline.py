"""A background worker for the GIL-free half of sealing and opening.

pyca's AEAD holds the GIL, but BLAKE3 (blake3-py) and file writes release
it. Sealing a letter hashes every segment and the whole ciphertext and
writes the output; opening hashes and writes as much. Handing those to
worker threads puts them on the other cores while the main thread encrypts
or decrypts.

A Worker runs its tasks in order on one thread. At most `depth` tasks wait:
submit() blocks beyond that, so a fast producer cannot pile up memory. A
task's error is raised in the main thread at the next submit() or at
finish(), never lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._io import io_errors

T = TypeVar("T")


class Worker:
    def __init__(self, name: str, depth: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pouch-{name}")
        self._pending: deque[Future[Any]] = deque()
        self._depth = depth

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        while self._pending and (len(self._pending) >= self._depth or self._pending[0].done()):
            self._pending.popleft().result()  # raises the task's error, if any
        future = self._pool.submit(_io_errors, fn, *args)
        self._pending.append(future)
        return future

    def finish(self) -> None:
        """Wait for every task; raise the first error."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # Every submitted task runs to its end, even when leaving on an
        # error: the tasks write data that was already verified (a --stream
        # body), and no thread may still write when the caller closes files.
        try:
            if exc_type is None:
                self.finish()
        finally:
            self._pool.shutdown(wait=True)


def _io_errors(fn: Callable[..., T], *args: Any) -> T:
    # A full disk met by a worker's write: the same FileError the main
    # thread would raise.
    with io_errors():
        return fn(*args)


class BufferRing:
    """Reusable buffers lent to worker tasks.

    A fresh 1 MiB object per block is a fresh mapping whose pages cost more
    to fault in than the block costs to decrypt. A buffer given back with
    the future of the task that still reads it (a hash, a write) is taken
    again only once that task is done.
    """

    def __init__(self, count: int, size: int) -> None:
        # Made when first needed: a small letter uses one or two.
        self._free: deque[tuple[bytearray, Future[Any] | None]] = deque()
        self._unmade, self._size = count, size

    def take(self) -> bytearray:
        if self._unmade and (not self._free or self._free[0][1] is not None):
            self._unmade -= 1
            return bytearray(self._size)
        buf, holder = self._free.popleft()
        if holder is not None:
            holder.result()
        return buf

    def give(self, buf: bytearray, holder: Future[Any] | None = None) -> None:
        self._free.append((buf, holder))
