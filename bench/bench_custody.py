"""Custody: verifying a long chain, and handing over and accepting a large pouch.

    make bench                  # part of it; BENCH_MIB sizes the pouch

Measured: verifying a 1,000-link chain (2,000 statements, every signature
checked, and the chain's rules) in this process; `pouch handover` on a
BENCH_MIB pouch whose chain already has a link (it appends without reading
the ciphertext); `pouch accept`, which re-hashes the ciphertext; and, for
scale, the start-up alone: Python importing the modules `pouch handover`
loads, and doing nothing else; and the libraries it stands on, alone.
Medians of RUNS runs (handover and accept alternate on the same pouch).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import POUCH, SIZE_MIB, bench_dir, measure, random_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.vectors.generate import vector_identity

from pouch.custody import Trailer, accept, hand_over, judge

LINKS = 1000
RUNS = 9
# What `pouch handover` imports before it does any work of its own.
HANDOVER_IMPORTS = (
    "import pouch.cli, pouch.cli._custody, pouch.home.post, pouch.home.carry, pouch.letter._format"
)
# The libraries it stands on, alone: the floor for any such command.
LIBRARY_IMPORTS = (
    "import click, json, sqlite3, blake3; from cryptography.hazmat.primitives.asymmetric import "
    "ed25519"
)


def chain_seconds() -> float:
    people = [vector_identity(f"agent {i}") for i in range(LINKS + 1)]
    start = datetime(2018, 5, 30, tzinfo=UTC)
    records: list[object] = []
    previous = None
    for i in range(LINKS):
        h = hand_over(people[i], "e" * 64, people[i + 1].signing_key,
                      start + timedelta(minutes=2 * i), previous, seq=i + 1)  # fmt: skip
        previous = accept(people[i + 1], h, start + timedelta(minutes=2 * i + 1))
        records += [h, previous]
    blobs = [(type(r), r.statement.encode()) for r in records]  # type: ignore[attr-defined]
    began = time.perf_counter()
    parsed = [kind.from_bytes(data) for kind, data in blobs]
    verdict = judge("e" * 64, Trailer(records=parsed), {people[0].signing_key})
    seconds = time.perf_counter() - began
    assert not verdict.problems and len(verdict.chain.links) == LINKS
    return seconds


def pouch(*args: str | Path, home: Path) -> list[str]:
    return [POUCH, *map(str, args), "--home", str(home)]


def main() -> None:
    import shutil
    import subprocess

    work = bench_dir()
    try:
        a, b = work / "a", work / "b"
        for home, name in ((a, "A"), (b, "B")):
            subprocess.run(pouch("init", "--name", name, "--no-passphrase", home=home),
                           check=True, capture_output=True)  # fmt: skip
            subprocess.run(pouch("card", "-o", work / f"{name}.card", home=home), check=True)
        for home, other in ((a, "B"), (b, "A")):
            subprocess.run(pouch("contacts", "add", work / f"{other}.card", "--verified",
                                 home=home), check=True, capture_output=True)  # fmt: skip
        big = work / "big.bin"
        random_file(big, SIZE_MIB)
        sealed = work / "big.pouch"
        subprocess.run(pouch("seal", "-t", "B", "-A", big, "-o", sealed, big, home=a),
                       check=True, capture_output=True)  # fmt: skip
        big.unlink()
        # The first handover hashes the ciphertext once; later ones do not.
        subprocess.run(pouch("handover", sealed, "--to", "B", home=a), check=True,
                       capture_output=True)  # fmt: skip
        handover, accepting = [], []
        holders = [(b, "A", a), (a, "B", b)]
        subprocess.run(pouch("accept", sealed, home=b), check=True, capture_output=True)
        for i in range(RUNS):
            giver, taker_name, taker = holders[i % 2]
            handover.append(measure(pouch("handover", sealed, "--to", taker_name, home=giver),
                                    warm=False, sample=False).seconds)  # fmt: skip
            accepting.append(measure(pouch("accept", sealed, home=taker), warm=False,
                                     sample=False).seconds)  # fmt: skip
        startup, floor = (
            [measure([sys.executable, "-c", code], warm=False, sample=False).seconds
             for _ in range(RUNS)]
            for code in (HANDOVER_IMPORTS, LIBRARY_IMPORTS)
        )  # fmt: skip
        print()
        print("| measure | figure |")
        print("|---|---:|")
        print(
            f"| verifying a {LINKS:,}-link custody chain (in-process) | {chain_seconds():.2f} s |"
        )
        print(f"| `pouch handover` on a {SIZE_MIB:,} MiB pouch, median wall | "
              f"{statistics.median(handover) * 1000:.0f} ms |")  # fmt: skip
        print(f"| `pouch accept` on it (re-hashes the ciphertext), median wall | "
              f"{statistics.median(accepting) * 1000:.0f} ms |")  # fmt: skip
        print(f"| start-up alone (Python importing what `pouch handover` loads), median wall | "
              f"{statistics.median(startup) * 1000:.0f} ms |")  # fmt: skip
        print(f"| of which the libraries alone (click, cryptography, sqlite3, blake3) | "
              f"{statistics.median(floor) * 1000:.0f} ms |")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
