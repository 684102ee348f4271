"""The engine through its Python API: streaming, two phases, parallel files."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pouch import age
from pouch.errors import HeaderError, HeaderMacError, NoIdentityMatchError, PayloadError, UsageError

from .conftest import POUCH, det_rand, random_bytes

CHUNK = age.CHUNK_SIZE
ENC_CHUNK = age.ENC_CHUNK_SIZE
BIG = 9 * 1024 * 1024 + 5  # 145 chunks: enough for two workers


@pytest.fixture(scope="module")
def identity() -> age.X25519Identity:
    return age.X25519Identity.generate(det_rand(b"identity"))


def seal(data: bytes, recipients: list[age.Recipient], **kw: object) -> bytes:
    out = io.BytesIO()
    age.encrypt(io.BytesIO(data), out, recipients, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def unseal(data: bytes, identities: list[age.Identity]) -> bytes:
    out = io.BytesIO()
    age.decrypt(io.BytesIO(data), out, identities)
    return out.getvalue()


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1, 5 * CHUNK + 3]
)
@pytest.mark.parametrize("armor", [False, True])
def test_round_trip(identity: age.X25519Identity, size: int, armor: bool) -> None:
    data = random_bytes(size, seed=size)
    sealed = seal(data, [identity.recipient], armor=armor)
    assert unseal(sealed, [identity]) == data
    if not armor:
        # chunk layout: one final chunk for an empty payload, never an empty
        # final chunk otherwise
        header_len = sealed.index(b"\n---") + 1 + 48
        payload = len(sealed) - header_len - 16
        assert payload == size + 16 * max(1, -(-size // CHUNK))


def test_post_quantum_round_trip() -> None:
    pq = age.HybridIdentity.generate()
    data = random_bytes(200_000)
    sealed = seal(data, [pq.recipient, age.HybridIdentity.generate().recipient])
    assert sealed.count(b"\n-> mlkem768x25519 ") == 2
    assert unseal(sealed, [pq]) == data


def test_post_quantum_and_classic_do_not_mix(identity: age.X25519Identity) -> None:
    pq = age.HybridIdentity.generate()
    with pytest.raises(UsageError, match="can't be mixed"):
        seal(b"x", [pq.recipient, identity.recipient])


def test_a_passphrase_stands_alone(identity: age.X25519Identity) -> None:
    with pytest.raises(UsageError, match="passphrase"):
        seal(b"x", [age.ScryptRecipient("pw", work_factor=10), identity.recipient])


def test_scrypt_round_trip_and_wrong_passphrase() -> None:
    sealed = seal(b"letter", [age.ScryptRecipient("right", work_factor=10)])
    assert b"\n-> scrypt " in sealed and b" 10\n" in sealed
    assert unseal(sealed, [age.ScryptIdentity("right")]) == b"letter"
    with pytest.raises(NoIdentityMatchError, match="incorrect passphrase"):
        unseal(sealed, [age.ScryptIdentity("wrong")])


def test_default_passphrase_work_factor_is_18() -> None:
    sealed = seal(b"", [age.ScryptRecipient("pw")])
    assert sealed.split(b"\n")[1].endswith(b" 18")


def test_two_phase_encryptor_gives_header_and_nonce_first(
    identity: age.X25519Identity,
) -> None:
    enc = age.Encryptor([identity.recipient])
    header, nonce = enc.header, enc.nonce
    assert header.startswith(b"age-encryption.org/v1\n") and len(nonce) == 16
    out = io.BytesIO()
    with enc.writer(out) as w:
        w.write(b"body")
    assert out.getvalue().startswith(header + nonce)
    with pytest.raises(RuntimeError):
        enc.writer(io.BytesIO())  # one payload per file key and nonce

    d = age.Decryptor(io.BytesIO(out.getvalue()), [identity])
    assert (d.header, d.nonce) == (header, nonce)
    assert d.reader().read() == b"body"


def test_injected_randomness_makes_encryption_reproducible(
    identity: age.X25519Identity,
) -> None:
    a = seal(b"same", [identity.recipient], rand=det_rand(b"r"))
    b = seal(b"same", [identity.recipient], rand=det_rand(b"r"))
    assert a == b


def test_parallel_sealing_gives_the_same_bytes_as_sequential(
    identity: age.X25519Identity, tmp_path: Path
) -> None:
    data = random_bytes(BIG)
    src = tmp_path / "plain"
    src.write_bytes(data)
    sequential = seal(data, [identity.recipient], rand=det_rand(b"same"))
    for jobs in (1, 2, 3):
        out = tmp_path / f"out{jobs}"
        age.encrypt_file(src, out, [identity.recipient], jobs=jobs, rand=det_rand(b"same"))
        assert out.read_bytes() == sequential
        back = tmp_path / f"back{jobs}"
        age.decrypt_file(out, back, [identity], jobs=jobs)
        assert back.read_bytes() == data


def _damage_cases(sealed: bytes) -> dict[str, tuple[bytes, str]]:
    header_len = sealed.index(b"\n---") + 1 + 48
    payload_start = header_len + 16
    n = (len(sealed) - payload_start + ENC_CHUNK - 1) // ENC_CHUNK

    def flip(at: int) -> bytes:
        b = bytearray(sealed)
        b[at] ^= 0x80
        return bytes(b)

    middle = payload_start + (n // 2) * ENC_CHUNK + 100
    return {
        "first chunk": (flip(payload_start + 5), "chunk 0 does not authenticate"),
        "middle chunk": (flip(middle), f"chunk {n // 2} does not authenticate"),
        "last chunk": (flip(len(sealed) - 1), f"chunk {n - 1} does not authenticate"),
        "nonce": (flip(header_len + 3), "chunk 0 does not authenticate"),
        "truncated at a chunk boundary": (
            sealed[: payload_start + (n - 1) * ENC_CHUNK],
            "final chunk missing",
        ),
        "truncated inside a chunk": (sealed[:-100], "does not authenticate"),
        "truncated inside a tag": (sealed[:-20], "cut short"),
        # the final chunk is short, so the extra byte joins it
        "trailing data": (sealed + b"\x00", f"chunk {n - 1} does not authenticate"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "first chunk",
        "middle chunk",
        "last chunk",
        "nonce",
        "truncated at a chunk boundary",
        "truncated inside a chunk",
        "truncated inside a tag",
        "trailing data",
    ],
)
@pytest.mark.parametrize("jobs", [1, 2])
def test_damage_is_named_and_nothing_is_written(
    identity: age.X25519Identity, tmp_path: Path, case: str, jobs: int
) -> None:
    data = random_bytes(BIG, seed=2)
    sealed = seal(data, [identity.recipient])
    damaged, message = _damage_cases(sealed)[case]
    src = tmp_path / "damaged.age"
    src.write_bytes(damaged)
    out = tmp_path / "out"
    with pytest.raises(PayloadError, match=message):
        age.decrypt_file(src, out, [identity], jobs=jobs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.age"]
    # the streaming path names the same problem
    with pytest.raises(PayloadError, match=message):
        unseal(damaged, [identity])


@pytest.mark.parametrize("jobs", [1, 2])
def test_data_after_a_full_final_chunk_is_named(
    identity: age.X25519Identity, tmp_path: Path, jobs: int
) -> None:
    sealed = seal(random_bytes(150 * CHUNK), [identity.recipient])
    src = tmp_path / "in.age"
    src.write_bytes(sealed + b"junk")
    with pytest.raises(PayloadError, match="data after the final chunk"):
        age.decrypt_file(src, tmp_path / "out", [identity], jobs=jobs)
    assert not (tmp_path / "out").exists()


def test_header_damage(identity: age.X25519Identity) -> None:
    sealed = seal(b"x", [identity.recipient])
    line_end = sealed.index(b"\n", 30)
    b = bytearray(sealed)
    b[line_end - 2] = ord("A") if b[line_end - 2] != ord("A") else ord("B")
    with pytest.raises((HeaderError, NoIdentityMatchError, HeaderMacError)):
        unseal(bytes(b), [identity])
    mac_at = sealed.index(b"\n--- ") + 6
    b = bytearray(sealed)
    b[mac_at] = ord("A") if b[mac_at] != ord("A") else ord("B")
    with pytest.raises(HeaderMacError, match="the file was altered"):
        unseal(bytes(b), [identity])


def test_streaming_releases_only_authenticated_chunks(identity: age.X25519Identity) -> None:
    data = random_bytes(5 * CHUNK + 10)
    sealed = bytearray(seal(data, [identity.recipient]))
    payload_start = sealed.index(b"\n---") + 1 + 48 + 16
    sealed[payload_start + 3 * ENC_CHUNK + 7] ^= 1  # chunk 3
    reader = age.Decryptor(io.BytesIO(bytes(sealed)), [identity]).reader()
    released = bytearray()
    with pytest.raises(PayloadError, match="chunk 3"):
        while chunk := reader.read(1000):
            released += chunk
    assert bytes(released) == data[: 3 * CHUNK]


def test_decrypt_killed_midway_leaves_nothing(identity: age.X25519Identity, tmp_path: Path) -> None:
    """SIGKILL a real `pouch age -d` while it writes: no output, no temp file."""
    key = tmp_path / "key"
    key.write_text(str(identity) + "\n")
    key.chmod(0o600)
    src = tmp_path / "big.age"
    size = 128 * 1024 * 1024
    with open(src, "wb") as f:
        with age.Encryptor([identity.recipient]).writer(f) as w:
            block = random_bytes(1 << 20)
            for _ in range(size >> 20):
                w.write(block)
    names = sorted(os.listdir(tmp_path))
    out = tmp_path / "out"

    # Sequential path: the ciphertext arrives on a pipe, half of it, and the
    # process is killed while it waits for the rest.
    p = subprocess.Popen([POUCH, "age", "-d", "-i", key, "-o", out], stdin=subprocess.PIPE)
    assert p.stdin is not None
    with open(src, "rb") as f:
        p.stdin.write(f.read(size // 2))
        p.stdin.flush()
    time.sleep(0.5)
    p.kill()
    p.wait()
    p.stdin.close()
    assert sorted(os.listdir(tmp_path)) == names

    # Parallel path: killed at several points while workers write. The output
    # is either absent or complete (a kill can land after the rename).
    kills = 0
    for delay in (0.02, 0.06, 0.1, 0.15, 0.25):
        p = subprocess.Popen([POUCH, "age", "-d", "-j", "2", "-i", key, "-o", out, src])
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if out.exists():
            assert out.stat().st_size == size
            out.unlink()
        else:
            kills += 1
        assert sorted(os.listdir(tmp_path)) == names
    assert kills >= 2  # at least two kills landed before the end

    # and left alone, it completes
    assert subprocess.run([POUCH, "age", "-d", "-i", key, "-o", out, src]).returncode == 0
    assert out.stat().st_size == size


def test_stdin_redirected_from_a_file_is_read_from_where_it_stands(
    identity: age.X25519Identity, tmp_path: Path
) -> None:
    data = random_bytes(BIG, seed=4)
    src = tmp_path / "plain"
    src.write_bytes(b"SKIP" + data)
    out = tmp_path / "out.age"
    code = (
        "import sys; sys.stdin.buffer.read(4); "
        "from pouch import age; "
        f"age.encrypt_file(None, {str(out)!r}, [age.parse_recipient({str(identity.recipient)!r})])"
    )
    with open(src, "rb") as f:
        subprocess.run([sys.executable, "-c", code], stdin=f, check=True)
    assert unseal(out.read_bytes(), [identity]) == data
