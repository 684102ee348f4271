"""pouch age against the stock age CLI, side by side in one run.

    make bench                  # 1 GiB, 5 timed runs per tool and direction
    BENCH_MIB=256 make bench    # smaller, for a quick look

Measures, file to file on the same random input, with the same key:
throughput of encryption and decryption (median of the timed runs, after
one warm-up each, tools interleaved so drift hits both alike), the ratio
pouch/age, peak RSS, and the wall time to decrypt a 1 KB file.

Memory is given two ways for pouch, which forks workers: the largest
single process's peak RSS (what /usr/bin/time reports) and the largest sum
of every process's PSS (what the whole tree held at once), both from a run
of its own (see common.measure).

The files live on the machine's disk (a folder beside the project, or
BENCH_DIR), where users keep theirs; the same rounds are run again in a
tmpfs (/dev/shm, when it has room; BENCH_TMPFS=0 skips it) for the extra
column. What the disk itself takes to write the file, with and without
an fsync, is measured in the same run. Prints a markdown table; the
README shows the latest.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from pathlib import Path

from common import (
    POUCH,
    SIZE_MIB,
    SMALL_RUNS,
    Series,
    age_cli,
    bench_dir,
    describe,
    disk_write,
    fs_type,
    interleaved,
    measure,
    random_file,
    ratio_table,
    tmpfs_dir,
)


def main() -> None:
    age, age_version = age_cli()
    work = bench_dir()
    shm = tmpfs_dir(4 * SIZE_MIB)
    try:
        results = run(work, age)
        in_memory = run(shm, age) if shm is not None else None
        small = small_decrypt(work, age)
        written, synced = disk_write(work)
        print()
        print(describe(work, age_version))
        print(f"The disk writes the file in {written:.2f} s, {synced:.2f} s with an fsync "
              "(medians of 3).")  # fmt: skip
        print()
        print(ratio_table(results, in_memory))
        print()
        print("| 1 KB file, decrypt | median wall |")
        print("|---|---:|")
        for name, times in small.items():
            print(f"| {name} | {statistics.median(times) * 1000:.0f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def _keys(work: Path) -> tuple[Path, str]:
    key = work / "key.txt"
    if not key.exists():
        subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", key], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, recipient


def run(work: Path, age: str) -> dict[str, dict[str, Series]]:
    key, recipient = _keys(work)
    plain = work / "plain.bin"
    random_file(plain, SIZE_MIB)
    sealed = work / "sealed.age"
    subprocess.run([age, "-r", recipient, "-o", sealed, plain], check=True)
    out = work / "out"

    def clear() -> None:
        out.unlink(missing_ok=True)

    label = fs_type(work)
    results = {
        "encrypt": interleaved(
            {
                "age": [age, "-r", recipient, "-o", out, plain],
                "pouch -j 1": [POUCH, "age", "-j", "1", "-r", recipient, "-o", out, plain],
                "pouch": [POUCH, "age", "-r", recipient, "-o", out, plain],
            },
            clear,
            f"{label} encrypt",
        ),
        "decrypt": interleaved(
            {
                "age": [age, "-d", "-i", key, "-o", out, sealed],
                "pouch -j 1": [POUCH, "age", "-d", "-j", "1", "-i", key, "-o", out, sealed],
                "pouch": [POUCH, "age", "-d", "-i", key, "-o", out, sealed],
            },
            clear,
            f"{label} decrypt",
        ),
    }
    # the decrypted output must be the input
    subprocess.run(["cmp", "-s", out, plain], check=True)
    for f in (plain, sealed, out):
        f.unlink()
    return results


def small_decrypt(work: Path, age: str) -> dict[str, list[float]]:
    key, recipient = _keys(work)
    out = work / "out"
    small_plain = work / "small.txt"
    small_plain.write_bytes(os.urandom(1000))
    small = work / "small.age"
    subprocess.run([age, "-r", recipient, "-o", small, small_plain], check=True)
    times: dict[str, list[float]] = {"age": [], "pouch": []}
    args = {
        "age": [age, "-d", "-i", key, "-o", out, small],
        "pouch": [POUCH, "age", "-d", "-i", key, "-o", out, small],
    }
    for _ in range(SMALL_RUNS):
        for name, a in args.items():
            out.unlink(missing_ok=True)
            times[name].append(measure([str(x) for x in a], warm=False, sample=False).seconds)
    return times


if __name__ == "__main__":
    main()
