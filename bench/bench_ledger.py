"""The register: 10,000 letters opened and recorded, checked, transcribed.

    make bench                  # part of it; BENCH_LETTERS sizes it

Kim seals BENCH_LETTERS short letters to Trump and Trump opens every one
(each recorded in his register, its container archived). Both run through
the CLI's own code in one process, one command after another, so that the
figure is the work per letter, not Python's start-up (a separate `pouch
open` costs that on top: see the 2 KB open figure). Then, as commands of
their own: `pouch db check` on Trump's register, `pouch transcript export
--decrypted` of the correspondence, and `pouch transcript verify` by a third
party. Wall times, one run each; the files live in BENCH_DIR (tmpfs).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time

from common import POUCH, bench_dir, cpu_model, fs_type, measure

from pouch.cli import cli

LETTERS = int(os.environ.get("BENCH_LETTERS", "10000"))


def run_in_process(args: list[str]) -> None:
    """One pouch command, through the CLI's code, in this process."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli.main(args=args, prog_name="pouch", standalone_mode=False)


def main() -> None:
    work = bench_dir()
    try:
        kim, trump = work / "kim", work / "trump"
        for home, name in ((kim, "Kim Jong-un"), (trump, "Donald J. Trump")):
            subprocess.run([POUCH, "init", "--name", name, "--no-passphrase", "--home", home],
                           check=True, capture_output=True)  # fmt: skip
            subprocess.run([POUCH, "card", "-o", f"{home}.card", "--home", home], check=True)
        for home, other in ((kim, trump), (trump, kim)):
            subprocess.run([POUCH, "contacts", "add", f"{other}.card", "--verified",
                            "--home", home], check=True, capture_output=True)  # fmt: skip
        sealed, inbox = work / "sealed", work / "inbox"
        sealed.mkdir()
        inbox.mkdir()
        body = work / "body.txt"
        body.write_bytes(b"Dear Mr. President, " * 50)  # about 1 KB

        began = time.perf_counter()
        for i in range(LETTERS):
            run_in_process(["seal", "-t", "Donald J. Trump", "--subject", f"Letter {i + 1}",
                            "-o", str(sealed / f"{i:05}.pouch"), str(body),
                            "--home", str(kim)])  # fmt: skip
        seal_seconds = time.perf_counter() - began

        began = time.perf_counter()
        for i in range(LETTERS):
            run_in_process(["open", str(sealed / f"{i:05}.pouch"), "-o", str(inbox),
                            "--force", "--home", str(trump)])  # fmt: skip
        open_seconds = time.perf_counter() - began

        check = measure([POUCH, "db", "check", "--home", str(trump)], warm=False, sample=False)
        transcript = work / "transcript.tar"
        export = measure(
            [POUCH, "transcript", "export", "Kim Jong-un", "-o", str(transcript), "--decrypted",
             "--home", str(trump)], warm=False, sample=False,
        )  # fmt: skip
        verify = measure([POUCH, "transcript", "verify", str(transcript),
                          "--card", f"{kim}.card", "--card", f"{trump}.card"],
                         warm=False, sample=False)  # fmt: skip
        ok = subprocess.run([POUCH, "transcript", "verify", str(transcript), "--json",
                             "--card", f"{kim}.card", "--card", f"{trump}.card"],
                            capture_output=True)  # fmt: skip
        assert ok.returncode == 0, ok.stdout[-2000:]
        assert subprocess.run([POUCH, "db", "check", "--home", str(trump)],
                              capture_output=True).returncode == 0  # fmt: skip

        print()
        cores = len(os.sched_getaffinity(0))
        print(f"{LETTERS:,} letters of 1 KB on {fs_type(work)}; {cores} cores ({cpu_model()}); "
              "one run each.")  # fmt: skip
        print()
        print(f"| measure ({LETTERS:,} letters of 1 KB) | figure |")
        print("|---|---:|")
        print(f"| sealing and recording, in one process | {LETTERS / seal_seconds:,.0f} "
              f"letters/s ({seal_seconds:.1f} s) |")  # fmt: skip
        print(f"| opening and recording, in one process | {LETTERS / open_seconds:,.0f} "
              f"letters/s ({open_seconds:.1f} s) |")  # fmt: skip
        print(f"| `pouch db check` on the {LETTERS:,}-letter register | {check.seconds:.1f} s |")
        print(f"| `pouch transcript export --decrypted` | {export.seconds:.1f} s |")
        print(f"| `pouch transcript verify` (every letter and stream) | {verify.seconds:.1f} s |")
        size = transcript.stat().st_size / (1 << 20)
        print(f"| transcript size | {size:,.1f} MiB |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
