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


WARM_BYTES = int(os.environ.get("BENCH_WARM_MIB", str(2 * SIZE_MIB + 512))) * MIB


def warm_memory() -> None:
    """Touch, then free, enough memory for the coming run's page cache.

    On this VM, memory the guest freed a few seconds ago is handed back to
    the host, and the next first touch of each page is slow: whichever tool
    happens to allocate cold memory looks two to five times slower. Writing
    every page of a large buffer and freeing it just before each run gives
    every tool the same warm start; the timing starts after.
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


def bench_dir() -> Path:
    if d := os.environ.get("BENCH_DIR"):
        return Path(tempfile.mkdtemp(prefix="pouch-bench-", dir=d))
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 6 * SIZE_MIB * MIB:
        return Path(tempfile.mkdtemp(prefix="pouch-bench-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="pouch-bench-"))


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


def interleaved(
    cases: dict[str, list[str | Path]], prepare: Callable[[], None], label: str
) -> dict[str, Series]:
    """RUNS timed runs of each case after a warm-up round, in a new shuffled
    order each round, prepare() (say, removing the output) before each; then
    one more run of each, sampled for memory."""
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
            sample = measure([str(a) for a in cases[name]], sample=False)
            if i > 0:  # the first round warms caches and memory up
                series[name].samples.append(sample)
            print(f"  {label:8} {name:12} {sample.seconds:6.3f} s", file=sys.stderr)
    for name in order:  # memory, from a run of its own
        prepare()
        os.sync()
        series[name].memory = measure([str(a) for a in cases[name]])
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


def ratio_table(results: dict[str, dict[str, Series]], base: str = "age") -> str:
    """The markdown table: throughput, ratio to the stock tool, peak RSS."""
    rows = [
        "| direction | tool | MiB/s (median) | ratio to age | MiB/s (best run) | ratio to age "
        "| largest process RSS | all processes PSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for direction, series in results.items():
        ref, ref_best = series[base].mib_per_s(), series[base].best_mib_per_s()
        for name, s in series.items():
            rows.append(
                f"| {direction} | {name} | {s.mib_per_s():,.0f} | {s.mib_per_s() / ref:.2f}x "
                f"| {s.best_mib_per_s():,.0f} | {s.best_mib_per_s() / ref_best:.2f}x "
                f"| {s.largest_mib():.1f} MiB | {s.tree_mib():.1f} MiB |"
            )
    return "\n".join(rows)
