"""Shared helpers: the real pouch console script, the real age CLI, keys."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .testkit import TESTKIT

POUCH = Path(sys.executable).parent / "pouch"

# The age conformance vectors live beside the repository (../shared), not in
# it. A clone elsewhere runs everything else, and says in its summary that
# they did not run; CI (.ci/run sets POUCH_REQUIRE_TESTKIT) fails instead.
TESTKIT_MISSING = not TESTKIT.is_dir() and not os.environ.get("POUCH_REQUIRE_TESTKIT")
collect_ignore = ["test_age_testkit.py"] if TESTKIT_MISSING else []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TESTKIT_MISSING:
        terminalreporter.write_line(
            f"NOT RUN: the 143 age conformance vectors (no testkit at {TESTKIT}); "
            "clone pouch beside ../shared, or set AGE_TESTKIT=/path/to/age-testkit",
            yellow=True,
            bold=True,
        )


@dataclass
class Result:
    code: int
    out: bytes
    err: str


def run(
    args: list[str | os.PathLike[str]],
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    preexec: Callable[[], None] | None = None,
) -> Result:
    full_env = {k: v for k, v in os.environ.items() if k != "POUCH_PASSPHRASE"}
    full_env.update(env or {})
    p = subprocess.run(
        [str(a) for a in args],
        input=input if input is not None else b"",
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
        preexec_fn=preexec,
    )
    return Result(p.returncode, p.stdout, p.stderr.decode(errors="replace"))


def pouch(*args: str | os.PathLike[str], **kw: object) -> Result:
    r = run([POUCH, *args], **kw)  # type: ignore[arg-type]
    assert "Traceback" not in r.err, r.err
    return r


def det_rand(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic 'randomness' for vectors and equality tests."""
    counter = 0

    def rand(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(n)

    return rand


@pytest.fixture(scope="session")
def age_cli() -> str:
    """The stock age CLI. Missing means the test fails: make test installs it."""
    path = shutil.which("age")
    assert path, "the stock age CLI is missing: run 'make test', which installs Debian's age"
    return path


@dataclass
class KeyFile:
    path: Path
    recipient: str


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[..., KeyFile]:
    counter = 0

    def make(pq: bool = False) -> KeyFile:
        nonlocal counter
        counter += 1
        path = tmp_path / f"key{counter}.txt"
        r = pouch("age-keygen", *(["--pq"] if pq else []), "-o", path)
        assert r.code == 0, r.err
        recipient = r.err.strip().removeprefix("Public key: ")
        return KeyFile(path, recipient)

    return make


def random_bytes(n: int, seed: int = 0) -> bytes:
    return det_rand(seed.to_bytes(4, "big"))(n) if n else b""


@pytest.fixture
def desks(tmp_path: Path) -> dict[str, Path]:
    """Trump and Kim, each with the other's verified card."""
    homes = {"trump": tmp_path / "trump", "kim": tmp_path / "kim"}
    names = {"trump": "Donald J. Trump", "kim": "Kim Jong-un"}
    for who, home in homes.items():
        assert pouch("init", "--name", names[who], "--no-passphrase", "--home", home).code == 0
        pouch("card", "-o", tmp_path / f"{who}.card", "--home", home)
    for who, other in (("trump", "kim"), ("kim", "trump")):
        r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified", "--home", homes[who])
        assert r.code == 0, r.err
    return homes
