"""tools/private_imports.py, which make lint runs: it finds what it must."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "private_imports.py"


def _check(tmp_path: Path, files: dict[str, str]) -> tuple[int, str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    dirs = sorted({name.split("/")[0] for name in files})
    r = subprocess.run(
        [sys.executable, str(TOOL), *dirs], cwd=tmp_path, capture_output=True, text=True
    )
    return r.returncode, r.stdout


def test_a_package_may_import_its_own_private_modules(tmp_path: Path) -> None:
    code, out = _check(tmp_path, {
        "src/pouch/age/_core.py": "from ._stream import X\nfrom .. import _io\n",
        "src/pouch/letter/_open.py": "from ._format import Y\nfrom ..age import Encryptor\n",
        "src/pouch/letter/__init__.py": "from ._open import Z\n",
        "tests/test_x.py": "from pouch.letter._format import Y\nfrom pouch import _canonical\n",
    })  # fmt: skip
    assert (code, out) == (0, "")


def test_another_package_may_not(tmp_path: Path) -> None:
    code, out = _check(tmp_path, {
        "src/pouch/letter/_open.py": "from ..age import _stream\n",
        "src/pouch/home/post.py": "import pouch.letter._format\n",
        "src/pouch/cli/x.py": "from ..home._store import SCHEMA\n",
        "tests/test_x.py": "from pouch.age._format import parse_header\n",
        "bench/b.py": "from pouch.age import _parallel\n",
    })  # fmt: skip
    assert code == 1
    assert out.splitlines() == [
        "bench/b.py:1: pouch.age._parallel is private to pouch.age",
        "src/pouch/cli/x.py:1: pouch.home._store is private to pouch.home",
        "src/pouch/home/post.py:1: pouch.letter._format is private to pouch.letter",
        "src/pouch/letter/_open.py:1: pouch.age._stream is private to pouch.age",
        "tests/test_x.py:1: pouch.age._format is private to pouch.age",
    ]
