"""Work on every core: forked worker processes, and the positioned reads
and writes they share files with.

pyca's AEAD holds the GIL, so STREAM chunks are sealed and opened by
processes, not threads. run() forks them, so that they inherit keys and
open files without anything being pickled; each works on its own share of
a range and reports an error, or a small result, through a pipe. The age
engine seals and opens whole files this way, the letter layer seals and
opens letters, paper encodes its codes.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence

from . import errors
from ._io import io_error
from .errors import FileError, PouchError

# Below this many chunks per worker, forking costs more than it saves.
MIN_CHUNKS_PER_WORKER = 64


def default_jobs() -> int:
    """POUCH_JOBS if set (1: one process, no forking), else one per core."""
    wanted = os.environ.get("POUCH_JOBS", "")
    if wanted.isdigit() and int(wanted) >= 1:
        return int(wanted)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pread_into(fd: int, buf: memoryview, offset: int) -> int:
    """Fill buf from fd at offset; fewer bytes only at the end of the file.

    Reading into one buffer reused for the whole range matters: a fresh
    1 MiB bytes object per read is a fresh mapping, and on a virtual machine
    every first touch of a page costs more than decrypting it.
    """
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


# The most one write() hands the kernel. On Linux 6.18, ext4 caches a file
# in folios as large as the write that fills them; on a virtual machine that
# gives freed memory back to its host (free page reporting), large folios
# come from exactly the blocks given back, and every first touch of them
# faults on the host. Measured 2026-12-03 on this project's VM (ext4, 512
# MiB, six runs each): 1 MiB writes took 0.14 s or 3-4 s (every other run),
# 512 KiB writes 2.2 s in five runs of six, 256 KiB writes 0.17-0.20 s in
# every run. Smaller writes cost nothing measurable elsewhere.
WRITE_PIECE = 256 << 10


def pwrite(fd: int, data: memoryview, offset: int) -> None:
    """Write all of data at offset, WRITE_PIECE bytes at a time."""
    while data:
        n = os.pwrite(fd, data[:WRITE_PIECE], offset)
        data = data[n:]
        offset += n


def worth_it(n_chunks: int, jobs: int) -> bool:
    """Whether forking workers pays for a payload of n_chunks."""
    return jobs > 1 and n_chunks >= 2 * MIN_CHUNKS_PER_WORKER


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def shares(n_chunks: int, jobs: int) -> list[int]:
    """Bounds cutting [0, n_chunks) into one contiguous share per worker,
    none smaller than MIN_CHUNKS_PER_WORKER."""
    jobs = max(1, min(jobs, n_chunks // MIN_CHUNKS_PER_WORKER))
    return [n_chunks * k // jobs for k in range(jobs + 1)]


def run(
    work: Callable[[int, int], bytes | None],
    bounds: Sequence[int],
    meanwhile: Callable[[], None] | None = None,
) -> list[bytes]:
    """Run work(bounds[k], bounds[k + 1]) for every share k, each on a core.

    The parent takes the first share and forks a worker for each other one;
    or, given meanwhile, forks a worker for every share and calls meanwhile()
    while they work. Returns what each share's work returned (a worker hands
    it back through its pipe). When several shares fail, the error of the
    earliest one is raised, so the message names the first bad chunk
    whatever the timing. The caller must not have other threads running:
    this forks.
    """
    jobs = len(bounds) - 1
    children: dict[int, tuple[int, int]] = {}  # share -> (pid, read end of its pipe)
    errors: list[PouchError | None] = [None] * jobs
    results: list[bytes] = [b""] * jobs
    try:
        parent = os.getpid()
        for k in range(0 if meanwhile else 1, jobs):
            r, w = os.pipe()
            # Signals stay blocked from fork until the child has reset its
            # handlers: a Ctrl-C in between must not run the parent's cleanup
            # in the child.
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
            try:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    os.close(r)
                    _child(work, bounds[k], bounds[k + 1], w, parent)
            except OSError as e:  # fork failed: no child, this process goes on
                os.close(r)
                os.close(w)
                raise FileError(
                    f"cannot start a worker process: {e.strerror}",
                    "POUCH_JOBS=1 works in this process alone",
                ) from None
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            os.close(w)
            children[k] = (pid, r)
        try:
            if meanwhile is None:
                results[0] = work(bounds[0], bounds[1]) or b""
            else:
                meanwhile()
        except PouchError as e:
            errors[0] = e
        except OSError as e:
            errors[0] = io_error(e)
        if errors[0] is not None:
            _stop(children)  # the result is lost anyway: do not wait for it
        for k in sorted(children):
            pid, r = children.pop(k)
            errors[k], results[k] = _reap(pid, r)
    finally:
        # Left over only when the parent is interrupted: stop the workers.
        _stop(children)
    for error in errors:
        if error is not None:
            raise error
    return results


def _stop(children: dict[int, tuple[int, int]]) -> None:
    for pid, r in children.values():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        os.close(r)
    children.clear()


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies: a killed pouch
    must not leave workers writing on."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _child(
    work: Callable[[int, int], bytes | None], first: int, end: int, w: int, parent: int
) -> None:
    code = 1
    try:
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        _die_with_parent(parent)
        try:
            result = work(first, end)
            if result:
                _write_all(w, b"ok\n" + result)
            code = 0
        except (PouchError, OSError) as e:
            # The error's own class, errno, message and hints, for the
            # parent to raise again (an ordinary exception, not a pickle).
            error = io_error(e) if isinstance(e, OSError) else e
            number = getattr(error, "errno", None) or 0
            said = "\0".join((type(error).__name__, str(number), error.message, *error.hints))
            _write_all(w, said.encode())
        except BaseException as e:
            _write_all(w, f"PouchError\x000\x00worker failed: {type(e).__name__}: {e}".encode())
    finally:
        # Never return into the parent's code, never run its exit handlers.
        os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reap(pid: int, r: int) -> tuple[PouchError | None, bytes]:
    """A worker's error, or what its work returned."""
    chunks = []
    while b := os.read(r, 1 << 16):
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    said = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) == 0:
        # A worker that returned nothing wrote nothing.
        return None, said[len(b"ok\n") :] if said.startswith(b"ok\n") else b""
    fields = said.decode(errors="replace").split("\0")
    kind = getattr(errors, fields[0], None)
    if (
        len(fields) < 3
        or not fields[1].isdigit()
        or not (isinstance(kind, type) and issubclass(kind, PouchError))
    ):
        status_code = os.waitstatus_to_exitcode(status)
        return PouchError(f"a worker process died (status {status_code})"), b""
    _, number, message, *hints = fields
    try:
        if issubclass(kind, FileError):
            return kind(message, *hints, errno=int(number) or None), b""
        return kind(message, *hints), b""
    except TypeError:  # a class with arguments of its own: its kind, in general
        return PouchError(message, *hints), b""
