"""What the benches share: timing a command with its peak memory, warm
memory, where to put the files, and the machine's description."""

from __future__ import annotations

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20
SIZE_MIB = int(os.environ.get("BENCH_MIB", "1024"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SMALL_RUNS = int(os.environ.get("BENCH_SMALL_RUNS", "30"))
POUCH = str(Path(sys.executable).parent / "pouch")
shuffle = random.Random(20190115).shuffle


@dataclass
class Sample:
    seconds: float
    largest_kib: int  # the largest single process's peak RSS
    tree_kib: int  # the peak of the sum of every process's PSS


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)  # timed, not sampled
    memory: Sample | None = None  # a run of its own, sampled

    def median_seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    def mib_per_s(self) -> float:
        return SIZE_MIB / self.median_seconds()

    def best_mib_per_s(self) -> float:
        return SIZE_MIB / min(s.seconds for s in self.samples)

    def spread(self) -> str:
        """The fastest and the slowest timed run, in seconds."""
        times = [s.seconds for s in self.samples]
        return f"{min(times):.2f} to {max(times):.2f} s"

    def largest_mib(self) -> float:
        return self.memory.largest_kib / 1024 if self.memory else 0.0

    def tree_mib(self) -> float:
        return self.memory.tree_kib / 1024 if self.memory else 0.0


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return pids


def _field_kib(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _hwm_kib(pid: int) -> int:
    return _field_kib(f"/proc/{pid}/status", "VmHWM:")


def _pss_kib(pid: int) -> int:
    """The process's proportional set size: pages it shares with others
    (a forked worker shares most of its parent's) count in part."""
    return _field_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


WARM_BYTES = int(os.environ.get("BENCH_WARM_MIB", "0")) * MIB


def warm_memory() -> None:
    """Touch, then free, enough memory for the coming run's page cache.

    On this VM, memory the guest freed a few seconds ago is handed back to
    the host, and the next first touch of each page is slow: whichever tool
    happens to allocate cold memory looks two to five times slower. Writing
    every page of a large buffer and freeing it just before each run gives
    every tool the same warm start; the timing starts after.

    Off by default (BENCH_WARM_MIB=0) since 2026-12-03: the host now takes
    freed memory back within a second or two, and writing 2.5 GiB before
    every run made each round take about 30 s without steadying the
    figures. BENCH_WARM_MIB=N touches N MiB before each run.
    """
    if WARM_BYTES:
        buf = bytearray(b"\x01") * WARM_BYTES
        del buf


def measure(
    args: list[str], env: dict[str, str] | None = None, warm: bool = True, sample: bool = True
) -> Sample:
    """Run args: wall time, the largest process's peak RSS, and the peak of
    the whole tree's memory.

    Sampled every 5 ms. A process's peak is its VmHWM, a high-water mark, so
    a late sample still sees it. The tree's memory is the sum of every
    process's PSS, not of their RSS: forked workers share their parent's
    pages, and an RSS sum would count those once per process. PSS is no
    high-water mark: this is the largest sum a sample saw.

    Sampling slows what it samples: reading a process's PSS walks its page
    tables, under the lock its page faults take, and a tool that works on
    several cores loses a core's share to the sampler. Timed runs therefore
    pass sample=False (their memory figures are 0)."""
    peaks: dict[int, int] = {}
    tree = 0
    if warm:
        warm_memory()
    start = time.perf_counter()
    p = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    done = threading.Event()

    def sample_tree() -> None:
        nonlocal tree
        while not done.is_set():
            total = 0
            for pid in _tree(p.pid):
                peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))
                total += _pss_kib(pid)
            tree = max(tree, total)
            time.sleep(0.005)

    t = threading.Thread(target=sample_tree, daemon=True)
    if sample:
        t.start()
    p.wait()
    seconds = time.perf_counter() - start
    done.set()
    if sample:
        t.join()
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(args)}")
    # Not ru_maxrss: the child is forked from this Python process, whose own
    # size it would report until exec.
    return Sample(seconds, max(peaks.values(), default=0), tree)


REPO = Path(__file__).resolve().parent.parent


def bench_dir() -> Path:
    """Where the files go: BENCH_DIR, else a folder beside the project,
    on the machine's disk, where users keep their files."""
    base = Path(os.environ.get("BENCH_DIR") or REPO / ".bench")
    base.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="pouch-bench-", dir=base))


def tmpfs_dir(need_mib: int) -> Path | None:
    """A folder in /dev/shm for the extra tmpfs column, if it has room
    (BENCH_TMPFS=0: none)."""
    shm = Path("/dev/shm")
    if os.environ.get("BENCH_TMPFS") == "0" or not shm.is_dir():
        return None
    if shutil.disk_usage(shm).free < need_mib * MIB:
        print(f"no tmpfs column: /dev/shm has less than {need_mib} MiB free", file=sys.stderr)
        return None
    return Path(tempfile.mkdtemp(prefix="pouch-bench-", dir=shm))


def disk_write(work: Path) -> tuple[float, float]:
    """What the file system itself takes to write SIZE_MIB (median of 3):
    into the page cache, and with an fsync after, as cp and a careful
    program would."""
    src = work / "disk-probe.src"
    random_file(src, SIZE_MIB)
    plain, synced = [], []
    for _ in range(3):
        for times, fsync in ((plain, False), (synced, True)):
            dst = work / "disk-probe.dst"
            dst.unlink(missing_ok=True)
            os.sync()
            warm_memory()
            start = time.perf_counter()
            with open(src, "rb") as f, open(dst, "wb") as g:
                while chunk := f.read(1 << 20):
                    g.write(chunk)
                g.flush()
                if fsync:
                    os.fsync(g.fileno())
            times.append(time.perf_counter() - start)
    src.unlink()
    (work / "disk-probe.dst").unlink()
    return statistics.median(plain), statistics.median(synced)


def fs_type(path: Path) -> str:
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


Args = list[str | Path] | Callable[[], list[str | Path]]


def interleaved(
    cases: dict[str, Args], prepare: Callable[[], None], label: str
) -> dict[str, Series]:
    """RUNS timed runs of each case after a warm-up round, in a new shuffled
    order each round, prepare() (say, removing the output) before each; then
    one more run of each, sampled for memory. A case given as a function
    is asked for its arguments anew each run (a new output name: the same
    pouch seal run again writes out the letter it sealed, not a new one)."""

    def args(name: str) -> list[str]:
        case = cases[name]
        return [str(a) for a in (case() if callable(case) else case)]

    series = {name: Series(name) for name in cases}
    order = list(cases)
    for i in range(RUNS + 1):
        # A new order each round: whatever the machine does between runs
        # (here, a VM's memory coming back cold) falls on every tool.
        shuffle(order)
        for name in order:
            prepare()
            # Flush the previous run's writes first, so that one tool's
            # writeback is not timed as another's work.
            os.sync()
            sample = measure(args(name), sample=False)
            if i > 0:  # the first round warms caches and memory up
                series[name].samples.append(sample)
            print(f"  {label:8} {name:12} {sample.seconds:6.3f} s", file=sys.stderr)
    for name in order:  # memory, from a run of its own
        prepare()
        os.sync()
        series[name].memory = measure(args(name))
    return series


def describe(work: Path, age_version: str) -> str:
    cores = len(os.sched_getaffinity(0))
    return (
        f"{SIZE_MIB} MiB random file, file to file on {fs_type(work)}; {cores} cores "
        f"({cpu_model()}); {RUNS} runs each; Python {platform.python_version()}, "
        f"age {age_version}."
    )


def age_cli() -> tuple[str, str]:
    age = shutil.which("age")
    if not age:
        raise SystemExit("the stock age CLI is missing (make bench installs it)")
    version = subprocess.run([age, "--version"], capture_output=True, text=True).stdout
    return age, version.strip()


def random_file(path: Path, mib: int) -> None:
    print(f"writing {mib} MiB of random data to {path} ...", file=sys.stderr)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))


def ratio_table(
    results: dict[str, dict[str, Series]],
    tmpfs: dict[str, dict[str, Series]] | None = None,
    base: str = "age",
) -> str:
    """The markdown table: on the disk, the median throughput, the spread
    of the timed runs and the ratio of medians to the stock tool, and the
    peak memory; on tmpfs (if measured), the median and its ratio."""
    head = "| direction | tool | MiB/s (median) | runs (fastest to slowest) | ratio to age "
    rule = "|---|---|---:|---:|---:|"
    if tmpfs:
        head += "| tmpfs MiB/s | tmpfs ratio "
        rule += "---:|---:|"
    rows = [head + "| largest process RSS | all processes PSS |", rule + "---:|---:|"]
    for direction, series in results.items():
        ref = series[base].mib_per_s()
        for name, s in series.items():
            row = f"| {direction} | {name} | {s.mib_per_s():,.0f} | {s.spread()} "
            row += f"| {s.mib_per_s() / ref:.2f}x "
            if tmpfs:
                t, t_ref = tmpfs[direction][name], tmpfs[direction][base].mib_per_s()
                row += f"| {t.mib_per_s():,.0f} | {t.mib_per_s() / t_ref:.2f}x "
            rows.append(row + f"| {s.largest_mib():.1f} MiB | {s.tree_mib():.1f} MiB |")
    return "\n".join(rows)
