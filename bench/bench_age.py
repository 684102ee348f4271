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

Files live in a tmpfs (/dev/shm) when it has room, so that the disk's
writeback does not drown the tools' own cost; BENCH_DIR overrides it.
Prints a markdown table; the README shows the latest.
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
    age_cli,
    bench_dir,
    describe,
    interleaved,
    measure,
    random_file,
    ratio_table,
)


def main() -> None:
    age, age_version = age_cli()
    work = bench_dir()
    try:
        run(work, age, age_version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, age: str, age_version: str) -> None:
    key = work / "key.txt"
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", key], check=True, capture_output=True, text=True
    ).stdout.strip()
    plain = work / "plain.bin"
    random_file(plain, SIZE_MIB)
    sealed = work / "sealed.age"
    subprocess.run([age, "-r", recipient, "-o", sealed, plain], check=True)
    out = work / "out"

    def clear() -> None:
        out.unlink(missing_ok=True)

    results = {
        "encrypt": interleaved(
            {
                "age": [age, "-r", recipient, "-o", out, plain],
                "pouch -j 1": [POUCH, "age", "-j", "1", "-r", recipient, "-o", out, plain],
                "pouch": [POUCH, "age", "-r", recipient, "-o", out, plain],
            },
            clear,
            "encrypt",
        ),
        "decrypt": interleaved(
            {
                "age": [age, "-d", "-i", key, "-o", out, sealed],
                "pouch -j 1": [POUCH, "age", "-d", "-j", "1", "-i", key, "-o", out, sealed],
                "pouch": [POUCH, "age", "-d", "-i", key, "-o", out, sealed],
            },
            clear,
            "decrypt",
        ),
    }
    # the decrypted output must be the input
    subprocess.run(["cmp", "-s", out, plain], check=True)

    small_plain = work / "small.txt"
    small_plain.write_bytes(os.urandom(1000))
    small = work / "small.age"
    subprocess.run([age, "-r", recipient, "-o", small, small_plain], check=True)
    small_times: dict[str, list[float]] = {"age": [], "pouch": []}
    small_args = {
        "age": [age, "-d", "-i", key, "-o", out, small],
        "pouch": [POUCH, "age", "-d", "-i", key, "-o", out, small],
    }
    for _ in range(SMALL_RUNS):
        for name, args in small_args.items():
            clear()
            small_times[name].append(
                measure([str(a) for a in args], warm=False, sample=False).seconds
            )

    print()
    print(describe(work, age_version))
    print()
    print(ratio_table(results))
    print()
    print("| 1 KB file, decrypt | median wall |")
    print("|---|---:|")
    for name, times in small_times.items():
        print(f"| {name} | {statistics.median(times) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
