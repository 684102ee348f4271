"""pouch(1) is written from the commands: every command is in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import pouch

ROOT = Path(__file__).resolve().parent.parent


def test_the_manual_page_has_every_command(tmp_path: Path) -> None:
    page = tmp_path / "pouch.1"
    r = subprocess.run([sys.executable, ROOT / "tools" / "manpage.py", page], capture_output=True)
    assert r.returncode == 0, r.stderr
    roff = page.read_text()
    listed = pouch("--help").out.decode().split("Commands:")[1].splitlines()
    commands = [line.split()[0] for line in listed if line.startswith("  ") and line.strip()]
    assert "seal" in commands and "age-keygen" in commands
    for command in commands:
        assert f'.SS "pouch {command.replace("-", chr(92) + "-")}' in roff, command
    assert '.SS "pouch contacts add"' in roff and "\\fB\\-t, \\-\\-to NAME\\fR" in roff
    if shutil.which("man"):
        shown = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                               env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert shown.returncode == 0 and "pouch seal [OPTIONS]" in shown.stdout
