"""Crash safety: `pouch seal` and `pouch open` killed with SIGKILL at random
points, then checked and run again (SPEC.md 5.3).

After every kill:
- `pouch db check` is clean, for both homes;
- the letter is recorded completely or not at all;
- no output is half-written: the output is absent or a whole container;
- running the same command again completes it, with no duplicate letter
  and no second sequence number.

Kills fall at a random time in a run, and (one trial in three) at a
named step of the crash order (POUCH_TEST_KILL_AT), so that every window
is hit, however narrow. CRASH_TRIALS sets the number of trials (make test:
50; make soak: 500).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pouch import container

from .conftest import POUCH, pouch

TRIALS = int(os.environ.get("CRASH_TRIALS", "50"))


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    homes = {"a": tmp_path / "kim", "b": tmp_path / "trump"}
    for who, name in (("a", "Kim Jong-un"), ("b", "Donald J. Trump")):
        assert pouch("init", "--name", name, "--no-passphrase", "--home", homes[who]).code == 0
        pouch("card", "-o", tmp_path / f"{who}.card", "--home", homes[who])
    for who, other in (("a", "b"), ("b", "a")):
        r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified", "--home", homes[who])
        assert r.code == 0, r.err
    return homes


SEAL_STEPS = ["seal:reserved", "seal:kept", "seal:committed", "seal:named"]
OPEN_STEPS = ["open:recorded", "open:named"]


def _killed(args: list[str], after: float, step: str | None) -> int | None:
    """Run pouch with args, SIGKILL it after `after` seconds (or at step);
    its exit code if it finished first, else None."""
    env = {**os.environ, **({"POUCH_TEST_KILL_AT": step} if step else {})}
    p = subprocess.Popen(
        [str(POUCH), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        code = p.wait(timeout=after if step is None else 120)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return None
    return None if code == -signal.SIGKILL else code


def _ledger(home: Path) -> dict[str, dict[str, object]]:
    r = pouch("letters", "--json", "--home", home)
    assert r.code == 0, r.err
    return {x["id"]: x for x in json.loads(r.out)["letters"]}


def _clean(home: Path) -> None:
    r = pouch("db", "check", "--home", home)
    assert r.code == 0, r.out.decode() + r.err


def _whole_or_absent(path: Path) -> None:
    """An output is a whole container or nothing: never a partial file."""
    if path.exists():
        with open(path, "rb") as f:
            c = container.parse(f)
            assert c.src.seek(0, os.SEEK_END) == container.HEADER.size + c.age_length
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".pouch-")]
    assert leftovers == [], leftovers


def test_seal_and_open_survive_sigkill(homes: dict[str, Path], tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1")))
    out, inbox = tmp_path / "out", tmp_path / "inbox"
    out.mkdir()
    inbox.mkdir()
    # How long an uninterrupted run takes: kills fall anywhere in it.
    body = tmp_path / "body.txt"
    body.write_bytes(os.urandom(300_000))
    began = time.monotonic()
    r = pouch(
        "seal", "-t", "Donald J. Trump", "-o", out / "first.pouch", body, "--home", homes["a"]
    )
    assert r.code == 0, r.err
    span = time.monotonic() - began
    sealed = [out / "first.pouch"]
    sent = 1

    for trial in range(TRIALS):
        if trial % 2 == 0:
            # Seal a letter, killed somewhere; then the same command again.
            target = out / f"letter-{trial}.pouch"
            args = ["seal", "-t", "Donald J. Trump", "-o", str(target), str(body),
                    "--home", str(homes["a"])]  # fmt: skip
            step = SEAL_STEPS[trial // 2 % 4] if trial % 3 == 0 else None
            code = _killed(args, rng.uniform(0, span * 1.2), step)
            _clean(homes["a"])
            _whole_or_absent(target)
            before = _ledger(homes["a"])
            if code is None:
                r = pouch(*args)
                assert r.code == 0, (trial, r.err)
            else:
                assert code == 0
            after = _ledger(homes["a"])
            assert target.exists()
            sent += 1
            mine = [x for x in after.values() if x["direction"] == "sent"]
            assert len(mine) == sent, (trial, "a duplicate, or a letter lost")
            assert sorted(x["seq"] for x in mine) == list(range(1, sent + 1)), trial
            assert all(x["written"] for x in mine), trial
            assert set(before) <= set(after)
            sealed.append(target)
            _clean(homes["a"])
        else:
            # Open the next letter into the inbox, killed somewhere; again.
            letter = sealed[len(_ledger(homes["b"]))]
            folder = inbox / f"open-{trial}"
            folder.mkdir()
            args = ["open", str(letter), "-o", str(folder), "--home", str(homes["b"])]
            step = OPEN_STEPS[trial // 2 % 2] if trial % 3 == 0 else None
            _killed(args, rng.uniform(0, span * 1.2), step)
            _clean(homes["b"])
            assert [p.name for p in folder.iterdir() if p.name.startswith(".pouch-")] == []
            r = pouch(*args)  # parts already named, byte for byte, count as named
            assert r.code == 0, (trial, r.err)
            got = _ledger(homes["b"])
            received = [x for x in got.values() if x["direction"] == "received"]
            assert len(received) == len({x["id"] for x in received})
            assert sorted(x["seq"] for x in received) == list(range(1, len(received) + 1))
            assert all(x["written"] for x in received), trial
            assert [p.read_bytes() for p in folder.iterdir()] == [body.read_bytes()], trial
            _clean(homes["b"])
