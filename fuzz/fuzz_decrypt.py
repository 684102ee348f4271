"""atheris target: whole decryption (armor detection, header, stanzas, STREAM).

The identities are those of the testkit's vectors (read from
../shared/age-testkit, not copied) and the passphrase "password", so seeds
from the testkit reach the payload. Only PouchError may escape. scrypt is
capped at work factor 10 here, so that the fuzzer measures the parser and
not scrypt's deliberate cost.
"""

import io
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pouch.age import ScryptIdentity, decrypt, parse_identity
    from pouch.errors import PouchError

TESTKIT = Path(__file__).resolve().parents[2] / "shared" / "age-testkit" / "testdata"


def _testkit_identities() -> list[str]:
    found: set[str] = set()
    for vector in TESTKIT.iterdir():
        head = vector.read_bytes().partition(b"\n\n")[0].decode()
        found.update(line[10:] for line in head.splitlines() if line.startswith("identity: "))
    return sorted(found)


IDENTITIES = [parse_identity(s) for s in _testkit_identities()]
IDENTITIES.append(ScryptIdentity("password", max_work_factor=10))  # type: ignore[arg-type]


def test_one_input(data: bytes) -> None:
    try:
        decrypt(io.BytesIO(data), io.BytesIO(), IDENTITIES)  # type: ignore[arg-type]
    except PouchError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
