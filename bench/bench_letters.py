"""pouch seal and pouch open against age -e and age -d, side by side.

    make bench                  # part of it; BENCH_MIB, BENCH_RUNS as for bench_age

A letter with a short body and a BENCH_MIB random attachment is sealed from
one home to another and opened into a folder; the stock age encrypts and
decrypts the same file to an X25519 key in the same rounds. pouch also
hashes and signs every MiB, and hashes the whole ciphertext (the envelope
id). The homes have no passphrase: unlocking has its own budget, measured
apart (scrypt at logN 18). Also measured: `pouch open` of a 2 KB letter,
and peak RSS while sealing and opening a 3 GiB sparse attachment.

Every run seals a new letter (a new output name: the same command run
again would write out the letter it sealed before) and opens the letter
into a home that has never seen it (the receiver's home is put back as
it was before each run: a second opening is a replay). As in bench_age,
the files are on the disk, and the rounds are run again in a tmpfs for
the extra column. Also measured on the disk: what the archive's durable
copy of the sealed letter costs alone.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import (
    POUCH,
    SIZE_MIB,
    SMALL_RUNS,
    Series,
    age_cli,
    bench_dir,
    describe,
    fs_type,
    interleaved,
    measure,
    random_file,
    ratio_table,
    tmpfs_dir,
    warm_memory,
)

SPARSE_GIB = int(os.environ.get("BENCH_SPARSE_GIB", "3"))


def pouch(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [POUCH, *map(str, args)], check=True, capture_output=True, env={**os.environ, **(env or {})}
    )


def main() -> None:
    age, age_version = age_cli()
    work = bench_dir()
    shm = tmpfs_dir(5 * SIZE_MIB)
    try:
        results, sealed_pouch = rounds(work, age)
        in_memory = rounds(shm, age)[0] if shm is not None else None
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)
            shm = None
        archive_copy = copy_cost(sealed_pouch, work)
        extras(work, age_version, results, in_memory, archive_copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def homes(work: Path) -> tuple[Path, Path]:
    sender, receiver = work / "sender", work / "receiver"
    for home, name in ((sender, "Sender"), (receiver, "Receiver")):
        pouch("init", "--name", name, "--no-passphrase", "--home", home)
        pouch("card", "-o", work / f"{name}.card", "--home", home)
    pouch("contacts", "add", work / "Receiver.card", "--verified", "--home", sender)
    pouch("contacts", "add", work / "Sender.card", "--verified", "--home", receiver)
    return sender, receiver


def rounds(work: Path, age: str) -> tuple[dict[str, dict[str, Series]], Path]:
    sender, receiver = homes(work)
    pristine = work / "receiver.pristine"
    shutil.copytree(receiver, pristine)
    key = work / "age.key"
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", key], check=True, capture_output=True, text=True
    ).stdout.strip()

    body = work / "body.txt"
    body.write_text("The annex is attached.\n")
    plain = work / "annex.bin"
    random_file(plain, SIZE_MIB)
    sealed_age, sealed_pouch = work / "annex.age", work / "annex.pouch"
    subprocess.run([age, "-r", recipient, "-o", sealed_age, plain], check=True)
    pouch("seal", "-t", "Receiver", "-A", plain, "-o", sealed_pouch, body, "--home", sender)
    out, folder, letters = work / "out", work / "inbox", work / "sealed"
    folder.mkdir()
    letters.mkdir()
    count = iter(range(1 << 30))

    def clear() -> None:
        out.unlink(missing_ok=True)
        for d in (folder, letters, sender / "archive"):
            for f in d.iterdir():
                f.unlink()
        shutil.rmtree(receiver)
        shutil.copytree(pristine, receiver)

    def seal() -> list[str | Path]:
        new = letters / f"{next(count)}.pouch"
        return [POUCH, "seal", "-t", "Receiver", "-A", plain, "-o", new, body, "--home", sender]

    label = fs_type(work)
    results = {
        "seal": interleaved(
            {"age": [age, "-r", recipient, "-o", out, plain], "pouch seal": seal},
            clear,
            f"{label} seal",
        ),
        "open": interleaved(
            {
                "age": [age, "-d", "-i", key, "-o", out, sealed_age],
                "pouch open": [POUCH, "open", sealed_pouch, "-o", folder, "--home", receiver],
            },
            clear,
            f"{label} open",
        ),
    }
    # the letter opened must be the file sealed
    clear()
    pouch("open", sealed_pouch, "-o", folder, "--home", receiver)
    subprocess.run(["cmp", "-s", folder / "annex.bin", plain], check=True)
    clear()
    for f in (plain, sealed_age, out):
        f.unlink(missing_ok=True)
    return results, sealed_pouch


def copy_cost(sealed: Path, work: Path) -> float:
    """The archive's durable copy of a sealed letter, alone (median of 3)."""
    from pouch._io import copy_durably

    times = []
    for _ in range(3):
        kept = work / "archive-copy.pouch"
        kept.unlink(missing_ok=True)
        os.sync()
        warm_memory()
        with open(sealed, "rb") as f:
            start = time.perf_counter()
            copy_durably(f, kept)
            times.append(time.perf_counter() - start)
    kept.unlink()
    return statistics.median(times)


def extras(
    work: Path,
    age_version: str,
    results: dict[str, dict[str, Series]],
    in_memory: dict[str, dict[str, Series]] | None,
    archive_copy: float,
) -> None:
    sender, receiver = work / "sender", work / "receiver"
    body = work / "body.txt"
    folder = work / "inbox"

    def clear() -> None:
        for f in folder.iterdir():
            f.unlink()

    # a 2 KB letter
    small = work / "small.pouch"
    pouch("seal", "-t", "Receiver", "-o", small, body, "--home", sender)
    small_open = []
    pristine = work / "receiver.small"
    shutil.copytree(receiver, pristine)
    for _ in range(SMALL_RUNS):  # each time into a home that has not seen it
        shutil.rmtree(receiver)
        shutil.copytree(pristine, receiver)
        args = [POUCH, "open", str(small), "--home", str(receiver)]
        small_open.append(measure(args, warm=False, sample=False).seconds)

    # unlocking: the same command with and without a passphrase-protected key
    locked = work / "locked"
    env = {"POUCH_PASSPHRASE": "a passphrase for the bench"}
    pouch("init", "--name", "Locked", "--home", locked, env=env)
    export = [POUCH, "key", "export", "--age"]
    with_lock = [
        measure([*export, "--home", str(locked)], env, warm=False, sample=False).seconds
        for _ in range(5)
    ]
    without = [
        measure([*export, "--home", str(receiver)], warm=False, sample=False).seconds
        for _ in range(5)
    ]

    # a sparse attachment: memory stays flat whatever the size
    sparse = work / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(SPARSE_GIB << 30)
    big = work / "sparse.pouch"
    seal_sparse = measure([POUCH, "seal", "-t", "Receiver", "-A", str(sparse), "-o", str(big),
                           str(body), "--home", str(sender)], warm=False)  # fmt: skip
    sparse.unlink()
    clear()
    open_sparse = measure(
        [POUCH, "open", str(big), "-o", str(folder), "--home", str(receiver)], warm=False
    )

    print()
    print(describe(work, age_version))
    print()
    print(ratio_table(results, in_memory))
    print()
    print("| measure | figure |")
    print("|---|---:|")
    print(f"| the archive's durable copy of the sealed letter, alone (disk) | "
          f"{archive_copy:.2f} s |")  # fmt: skip
    small_ms = statistics.median(small_open) * 1000
    print(f"| `pouch open` of a 2 KB letter, median wall | {small_ms:.0f} ms |")
    unlock = statistics.median(with_lock) - statistics.median(without)
    print(f"| unlocking a passphrase-protected identity (scrypt 2^18) | {unlock * 1000:.0f} ms |")
    print(f"| sealing a {SPARSE_GIB} GiB sparse attachment: wall, peak RSS | "
          f"{seal_sparse.seconds:.1f} s, {seal_sparse.largest_kib / 1024:.1f} MiB |")  # fmt: skip
    print(f"| opening it into a folder: wall, peak RSS | "
          f"{open_sparse.seconds:.1f} s, {open_sparse.largest_kib / 1024:.1f} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()
