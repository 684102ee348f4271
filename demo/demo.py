"""make demo: the seed scenario, as far as pouch has come.

Late May 2018: Kim Jong-un answers Donald Trump's letter cancelling the
Singapore summit; his former spy chief, Kim Yong-chol, carries the answer by
way of New York to Washington and hands it over. January 2019: Trump's letter
about a second summit is flown to Pyongyang and delivered by hand.

This first part runs the age engine only: real keys, real files, the real
`pouch` and the stock `age` command lines, each step checked. Later parts
(signed letters, envoys and custody, the register, paper) grow from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

POUCH = str(Path(sys.executable).parent / "pouch")
AGE = shutil.which("age") or "age"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title}")


def show(
    args: list[str | Path], cwd: Path, check: bool = True, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    shown = ["pouch" if a == POUCH else "age" if a == AGE else str(a) for a in args]
    say("   $ " + " ".join(_short(a) for a in shown))
    p = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, **kw)  # type: ignore[call-overload]
    for line in p.stderr.decode(errors="replace").splitlines():
        say("     " + _short(line))
    if check and p.returncode != 0:
        raise SystemExit(f"demo failed: {' '.join(shown)} exited {p.returncode}")
    return p  # type: ignore[no-any-return]


def _short(s: str) -> str:
    # post-quantum keys are 1,960 characters: show their ends
    return " ".join(w if len(w) < 80 else f"{w[:24]}…{w[-8:]}" for w in s.split(" "))


def recipient_of(key: Path) -> str:
    for line in key.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ")
    raise SystemExit(f"no public key in {key}")


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


REPLY = """\
Pyongyang, 30 May 2018

Mr President,

We received your letter of last week. We regret the decision to call off
the meeting in Singapore, but our side remains ready to sit down at any
time and in any form. Our envoy carries this answer to you by hand.

Kim Jong-un
"""

LETTER = """\
Washington, 14 January 2019

Chairman Kim,

Our teams have looked at Bangkok, Hanoi and Hawaii for a second meeting.
I hope your envoy can come to Washington soon to settle the details.

Donald J. Trump
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pouch-demo-") as tmp:
        run(Path(tmp))


def run(d: Path) -> None:
    say("pouch demo: sealed letters, carried by hand (the age engine)")
    versions = f"pouch {_version([POUCH, '--version'])}, stock age {_version([AGE, '--version'])}"
    say(f"working in {d}; {versions}")

    step("1. Each desk makes its key (kept 0600, public half shown)")
    for desk in ("pyongyang", "washington"):
        show([POUCH, "age-keygen", "-o", f"{desk}.key"], d)
    for desk in ("pyongyang", "washington"):
        mode = (d / f"{desk}.key").stat().st_mode & 0o777
        assert mode == 0o600, mode
    pyongyang, washington = recipient_of(d / "pyongyang.key"), recipient_of(d / "washington.key")

    step("2. May 2018: Pyongyang seals its answer with pouch; Kim Yong-chol carries it")
    (d / "reply.txt").write_text(REPLY)
    (d / "annex.bin").write_bytes(os.urandom(300_000))  # maps and notes for the summit
    show([POUCH, "age", "-r", washington, "-o", "reply.age", "reply.txt"], d)
    show([POUCH, "age", "-r", washington, "-o", "annex.age", "annex.bin"], d)
    size = (d / "reply.age").stat().st_size
    say(f"   the envelope is {size} bytes; it names neither sender nor recipient:")
    header = (d / "reply.age").read_bytes().split(b"\n")[:2]
    say("     " + " | ".join(_short(h.decode()) for h in header) + " | …")
    say("   route: Pyongyang -> Beijing -> New York (meeting with Secretary Pompeo) -> Washington")

    step("3. At the White House the stock age CLI opens it")
    opened = show([AGE, "-d", "-i", "washington.key", "reply.age"], d)
    assert opened.stdout.decode() == REPLY
    for line in opened.stdout.decode().splitlines():
        say("   | " + line)

    step("4. January 2019: Washington seals with stock age (armored), pouch opens it")
    (d / "letter.txt").write_text(LETTER)
    show([AGE, "-a", "-r", pyongyang, "-o", "letter.age", "letter.txt"], d)
    say("   flown to Pyongyang and delivered by hand")
    show([POUCH, "age", "-d", "-i", "pyongyang.key", "-o", "letter.out", "letter.age"], d)
    assert (d / "letter.out").read_text() == LETTER
    say("   opened: the letter reads exactly as written")

    step("5. Tampered in transit: one flipped bit in the annex")
    flip_byte(d / "annex.age", (d / "annex.age").stat().st_size - 100)
    p = show([AGE, "-d", "-i", "washington.key", "-o", "annex.by-age", "annex.age"], d, check=False)
    left = (d / "annex.by-age").stat().st_size if (d / "annex.by-age").exists() else 0
    say(f"   stock age: exit {p.returncode}, and left a {left:,}-byte partial file behind")
    p = show(
        [POUCH, "age", "-d", "-i", "washington.key", "-o", "annex.by-pouch", "annex.age"],
        d,
        check=False,
    )
    assert p.returncode == 7 and not (d / "annex.by-pouch").exists()
    say(f"   pouch: exit {p.returncode}, and no output file at all")

    step("6. Harvest now, decrypt later: post-quantum keys (stock age 1.1.1 has none)")
    show([POUCH, "age-keygen", "--pq", "-o", "pyongyang-pq.key"], d)
    show(
        [
            POUCH,
            "age",
            "-r",
            recipient_of(d / "pyongyang-pq.key"),
            "-o",
            "letter-pq.age",
            "letter.txt",
        ],
        d,
    )
    stanza = (d / "letter-pq.age").read_bytes().split(b"\n")[1].split(b" ")[1].decode()
    say(f"   the file key is wrapped with {stanza} (ML-KEM-768 + X25519)")
    out = show([POUCH, "age", "-d", "-i", "pyongyang-pq.key", "letter-pq.age"], d)
    assert out.stdout.decode() == LETTER
    say("   opened with the post-quantum identity")

    say()
    say("all checks passed.")


def _version(args: list[str]) -> str:
    out = subprocess.run(args, capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().split()[-1]


if __name__ == "__main__":
    main()
