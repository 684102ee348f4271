"""Interop with the stock age CLI (Debian's age 1.1.1), in both directions.

Stock age 1.1.1 has no post-quantum recipients; the 19 post-quantum CCTV
vectors cover that side (test_age_testkit.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import KeyFile, pouch, random_bytes, run

# Sizes around the 64 KiB chunk boundary, and one large enough for pouch to
# seal and open it on several processes (at least 64 chunks per worker).
SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 9 * 1024 * 1024 + 17]


@pytest.mark.parametrize("size", SIZES)
def test_pouch_encrypts_to_three_recipients_age_decrypts(
    age_cli: str, make_key: Callable[..., KeyFile], tmp_path: Path, size: int
) -> None:
    keys = [make_key() for _ in range(3)]
    plain = tmp_path / "plain"
    plain.write_bytes(random_bytes(size, seed=size))
    enc = tmp_path / "plain.age"
    args = [a for k in keys for a in ("-r", k.recipient)]
    assert pouch("age", "-e", *args, "-o", enc, plain).code == 0
    for k in keys:
        r = run([age_cli, "-d", "-i", k.path, enc])
        assert r.code == 0, r.err
        assert r.out == plain.read_bytes()


@pytest.mark.parametrize("size", [0, 100, 65536, 200_000])
def test_pouch_armored_output_decrypts_with_age(
    age_cli: str, make_key: Callable[..., KeyFile], tmp_path: Path, size: int
) -> None:
    keys = [make_key() for _ in range(3)]
    data = random_bytes(size, seed=7)
    args = [a for k in keys for a in ("-r", k.recipient)]
    r = pouch("age", "-a", *args, input=data)
    assert r.code == 0, r.err
    assert r.out.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    for k in keys:
        out = run([age_cli, "-d", "-i", k.path], input=r.out)
        assert out.code == 0, out.err
        assert out.out == data


@pytest.mark.parametrize("size", SIZES)
def test_age_encrypts_pouch_decrypts(
    age_cli: str, make_key: Callable[..., KeyFile], tmp_path: Path, size: int
) -> None:
    keys = [make_key() for _ in range(2)]
    plain = tmp_path / "plain"
    plain.write_bytes(random_bytes(size, seed=size + 1))
    enc = tmp_path / "plain.age"
    args = [a for k in keys for a in ("-r", k.recipient)]
    assert run([age_cli, "-e", *args, "-o", enc, plain]).code == 0
    for k in keys:
        out = tmp_path / "out"
        r = pouch("age", "-d", "-i", k.path, "-o", out, enc)
        assert r.code == 0, r.err
        assert out.read_bytes() == plain.read_bytes()
        out.unlink()
        # and through pipes (the sequential path)
        r = pouch("age", "-d", "-i", k.path, input=enc.read_bytes())
        assert r.code == 0 and r.out == plain.read_bytes()


def test_age_armored_decrypts_with_pouch(
    age_cli: str, make_key: Callable[..., KeyFile], tmp_path: Path
) -> None:
    k = make_key()
    data = random_bytes(150_000, seed=3)
    enc = run([age_cli, "-a", "-r", k.recipient], input=data)
    assert enc.code == 0
    r = pouch("age", "-d", "-i", k.path, input=enc.out)
    assert r.code == 0, r.err
    assert r.out == data


def test_identity_files_work_in_both(age_cli: str, tmp_path: Path) -> None:
    # age-keygen's file with pouch, pouch age-keygen's file with age.
    age_key = tmp_path / "age.key"
    subprocess.run(["age-keygen", "-o", age_key], check=True, capture_output=True)
    age_recipient = run(["age-keygen", "-y", age_key]).out.decode().strip()
    assert pouch("age-keygen", "-y", age_key).out.decode().strip() == age_recipient

    pouch_key = tmp_path / "pouch.key"
    r = pouch("age-keygen", "-o", pouch_key)
    pouch_recipient = r.err.strip().removeprefix("Public key: ")
    assert run(["age-keygen", "-y", pouch_key]).out.decode().strip() == pouch_recipient

    data = b"flown to Pyongyang and delivered by hand\n"
    enc = pouch("age", "-r", pouch_recipient, "-r", age_recipient, "-a", input=data).out
    for key in (age_key, pouch_key):
        assert run([age_cli, "-d", "-i", key], input=enc).out == data
        assert pouch("age", "-d", "-i", key, input=enc).out == data


def test_pouch_reads_an_age_passphrase_encrypted_identity_file(
    age_cli: str, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    r = pouch("age-keygen", "-o", key)
    recipient = r.err.strip().removeprefix("Public key: ")
    locked = tmp_path / "key.age"
    assert pouch("age", "-p", "-o", locked, key, env={"POUCH_PASSPHRASE": "hush"}).code == 0
    os.chmod(locked, 0o600)
    enc = pouch("age", "-r", recipient, input=b"x").out
    r = pouch("age", "-d", "-i", locked, input=enc, env={"POUCH_PASSPHRASE": "hush"})
    assert r.code == 0, r.err
    assert r.out == b"x"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_failed_decryption_leaves_no_output_unlike_age(
    age_cli: str, make_key: Callable[..., KeyFile], tmp_path: Path
) -> None:
    k = make_key()
    plain = tmp_path / "plain"
    plain.write_bytes(random_bytes(9 * 1024 * 1024, seed=9))
    enc = tmp_path / "plain.age"
    assert pouch("age", "-r", k.recipient, "-o", enc, plain).code == 0
    _flip(enc, enc.stat().st_size - 10)  # inside the final chunk

    age_out = tmp_path / "age-out"
    r = run([age_cli, "-d", "-i", k.path, "-o", age_out, enc])
    assert r.code != 0
    # stock age 1.1.1 leaves what it had released behind
    assert age_out.exists() and age_out.stat().st_size > 0

    before = sorted(os.listdir(tmp_path))
    for jobs in ("1", "2"):
        pouch_out = tmp_path / "pouch-out"
        r = pouch("age", "-d", "-j", jobs, "-i", k.path, "-o", pouch_out, enc)
        assert r.code == 7, r.err
        assert "does not authenticate" in r.err
        assert not pouch_out.exists()
        assert sorted(os.listdir(tmp_path)) == before  # no temporary file either
