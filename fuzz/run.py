"""make fuzz: run every atheris target for a set time, seeded from the testkit.

    make fuzz                     # 60 s per target
    FUZZ_SECONDS=600 make fuzz

Corpora grow in fuzz/corpus/<target> (not committed). A crash stops the run
with the reproducer's path; exit status is non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTKIT = HERE.parents[1] / "shared" / "age-testkit" / "testdata"
TARGETS = [
    "fuzz_header",
    "fuzz_armor",
    "fuzz_decrypt",
    "fuzz_letter",
    "fuzz_container",
    "fuzz_statements",
    "fuzz_ledger",
    "fuzz_paper",
]


VECTORS = HERE.parent / "tests" / "vectors"


def seed(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for vector in sorted(
        [
            *VECTORS.glob("letters/*.pouch"),
            *VECTORS.glob("statements/*.json"),
            *VECTORS.glob("statements/*.receipt"),
            *VECTORS.glob("letters/*.tar"),
            *VECTORS.glob("paper/*.codes"),
        ]
    ):
        (corpus / vector.name).write_bytes(vector.read_bytes()[:20000])
    if not TESTKIT.is_dir():
        return
    for vector in sorted(TESTKIT.iterdir()):
        head, _, body = vector.read_bytes().partition(b"\n\n")
        if b"compressed: zlib" in head:
            body = zlib.decompress(body)
        (corpus / vector.name).write_bytes(body[:20000])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("targets", nargs="*", default=TARGETS)
    args = parser.parse_args()
    failed = []
    for target in args.targets:
        corpus = HERE / "corpus" / target
        seed(corpus)
        artifacts = HERE / "crashes" / target
        artifacts.mkdir(parents=True, exist_ok=True)
        print(f"== {target}: {args.seconds} s", flush=True)
        rc = subprocess.call(
            [
                sys.executable,
                str(HERE / f"{target}.py"),
                f"-max_total_time={args.seconds}",
                "-rss_limit_mb=2048",
                "-timeout=10",
                "-max_len=100000",
                f"-artifact_prefix={artifacts}/",
                "-print_final_stats=1",
                str(corpus),
            ]
        )
        if rc != 0:
            failed.append(target)
    if failed:
        print(f"crashes in: {', '.join(failed)} (see fuzz/crashes/)", file=sys.stderr)
        return 1
    print("no crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
