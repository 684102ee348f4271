"""The pouch age and age-keygen commands: what a person sees, and exit codes.

Every error is one "error:" line, maybe "hint:" lines, a documented exit
code (README.md), and never a traceback (conftest.pouch asserts that).
"""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import POUCH, KeyFile, pouch, random_bytes


def test_help_lists_the_commands() -> None:
    r = pouch("--help")
    assert r.code == 0
    assert b"age-keygen" in r.out and b"age " in r.out
    r = pouch("age", "--help")
    assert b"pouch age -d [-i PATH]... [-o OUTPUT] [INPUT]" in r.out
    assert b"-j, --jobs N" in r.out


def test_every_command_is_listed_where_it_is_loaded_from() -> None:
    # Commands load lazily from the table in pouch.cli: a command missing
    # from it would not run, one listed under the wrong module neither.
    import importlib

    from pouch import cli

    modules = sorted(set(cli._COMMANDS.values()))
    for module in modules:
        importlib.import_module(f"pouch.cli.{module}")
    assert sorted(cli.cli.commands) == sorted(cli._COMMANDS)
    for name, command in cli.cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"pouch.cli.{cli._COMMANDS[name]}", name


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["age"], "error: missing recipients", "hint: give -r/--recipient"),
        (["age", "-d", "-a"], "error: -a/--armor can't be used with -d/--decrypt", "detected"),
        (
            ["age", "-d", "-r", "age1x"],
            "error: -r/--recipient and -R/--recipients-file can't",
            "-i/--identity",
        ),
        (["age", "-e", "-d"], "error: -e/--encrypt can't be used with -d/--decrypt", None),
        (["age", "-p", "-r", "age1x"], "error: -p/--passphrase can't be combined", None),
        (["age", "-i", "k"], "error: -i/--identity is for decryption", None),
        (["age-keygen", "-y"], "error: -y needs the identity file as INPUT", None),
    ],
)
def test_usage_errors(args: list[str], message: str, hint: str | None) -> None:
    r = pouch(*args)
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0].startswith(message), r.err
    if hint:
        assert any(line.startswith("hint:") and hint in line for line in lines[1:]), r.err


def test_click_usage_errors_exit_2() -> None:
    r = pouch("age", "--jobs", "0")
    assert r.code == 2 and "Invalid value" in r.err


def test_decryption_errors_have_distinct_codes(
    make_key: Callable[..., KeyFile], tmp_path: Path
) -> None:
    k, other = make_key(), make_key()
    good = pouch("age", "-r", k.recipient, input=b"letter" * 1000).out

    def dec(data: bytes, key: Path = k.path) -> tuple[int, str]:
        r = pouch("age", "-d", "-i", key, input=data)
        return r.code, r.err.splitlines()[0] if r.err else ""

    assert dec(good, other.path) == (4, "error: no identity matched any of the file's recipients")
    assert dec(b"hello\n") == (
        5,
        "error: not an age file: the first line is not 'age-encryption.org/v1'",
    )
    assert dec(b"") == (5, "error: the file is empty")
    mac_at = good.index(b"\n--- ") + 5
    tampered = good[:mac_at] + (b"A" if good[mac_at : mac_at + 1] != b"A" else b"B")
    tampered += good[mac_at + 1 :]
    assert dec(tampered) == (6, "error: header MAC mismatch: the file was altered")
    assert dec(good[:-40]) == (
        7,
        "error: the file was altered or damaged: chunk 0 does not authenticate",
    )
    armored = pouch("age", "-a", "-r", k.recipient, input=b"x").out
    assert dec(armored.replace(b"-----END", b"-----FIN"))[0] == 8
    missing = tmp_path / "missing.age"
    r = pouch("age", "-d", "-i", k.path, missing)
    assert (r.code, r.err) == (9, f"error: cannot read {missing}: No such file or directory\n")


def test_key_errors_exit_3(make_key: Callable[..., KeyFile], tmp_path: Path) -> None:
    r = pouch("age", "-r", "age1notakey")
    assert r.code == 3 and r.err.startswith("error: malformed recipient 'age1notakey'")
    bad = tmp_path / "bad.key"
    bad.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    bad.chmod(0o600)
    r = pouch("age", "-d", "-i", bad)
    assert (r.code, r.err) == (3, f"error: {bad}: line 1 is not a valid secret key\n")


def test_a_readable_identity_file_is_refused(
    make_key: Callable[..., KeyFile],
) -> None:
    k = make_key()
    k.path.chmod(0o644)
    r = pouch("age", "-d", "-i", k.path, input=b"")
    assert r.code == 10
    assert r.err == (
        f"error: {k.path} holds secret keys but others can read it (mode 0644)\n"
        f"hint: make it private first: chmod 600 {k.path}\n"
    )


def test_passphrase_from_the_environment(tmp_path: Path) -> None:
    env = {"POUCH_PASSPHRASE": "Singapore, 12 June"}
    enc = pouch("age", "-p", input=b"summit", env=env)
    assert enc.code == 0, enc.err
    assert pouch("age", "-d", input=enc.out, env=env).out == b"summit"
    r = pouch("age", "-d", input=enc.out, env={"POUCH_PASSPHRASE": "Hanoi"})
    assert (r.code, r.err) == (4, "error: incorrect passphrase\n")
    # no passphrase and no terminal to ask on
    r = run_detached([POUCH, "age", "-d"], enc.out)
    assert r.returncode == 2
    assert b"there is no terminal to ask for it" in r.stderr
    assert b"hint: run it at a terminal" in r.stderr and b"set POUCH_PASSPHRASE" in r.stderr


def run_detached(
    args: list[str | os.PathLike[str]], data: bytes
) -> subprocess.CompletedProcess[bytes]:
    """Run without a controlling terminal (as in CI, or under cron)."""
    env = {k: v for k, v in os.environ.items() if k != "POUCH_PASSPHRASE"}
    return subprocess.run(
        [str(a) for a in args], input=data, capture_output=True, env=env, start_new_session=True
    )


def test_a_key_encrypted_file_does_not_prompt(make_key: Callable[..., KeyFile]) -> None:
    k = make_key()
    enc = pouch("age", "-r", k.recipient, input=b"x").out
    r = run_detached([POUCH, "age", "-d"], enc)
    assert r.returncode == 4
    assert r.stderr.decode().startswith("error: the file is not encrypted with a passphrase")


def test_binary_output_to_a_terminal_is_refused(make_key: Callable[..., KeyFile]) -> None:
    k = make_key()
    controller, terminal = pty.openpty()
    try:
        p = subprocess.run(
            [POUCH, "age", "-r", k.recipient], input=b"x", stdout=terminal, stderr=subprocess.PIPE
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert p.returncode == 10
    assert p.stderr.decode().splitlines() == [
        "error: refusing to write binary output to the terminal",
        "hint: did you mean to use -a/--armor?",
        "hint: or write to a file with -o/--output",
    ]


def test_stdout_gets_only_authenticated_chunks(
    make_key: Callable[..., KeyFile], tmp_path: Path
) -> None:
    k = make_key()
    data = random_bytes(5 * 65536 + 99)
    enc = bytearray(pouch("age", "-r", k.recipient, input=data).out)
    start = enc.index(b"\n--- ") + 48 + 16
    enc[start + 2 * 65552 + 1000] ^= 1
    r = pouch("age", "-d", "-i", k.path, input=bytes(enc))
    assert r.code == 7
    assert r.out == data[: 2 * 65536]


def test_output_file_and_dash(make_key: Callable[..., KeyFile], tmp_path: Path) -> None:
    k = make_key()
    plain = tmp_path / "letter.txt"
    plain.write_bytes(b"Dear Chairman Kim,\n")
    enc = tmp_path / "letter.age"
    assert pouch("age", "-r", k.recipient, "-o", enc, plain).code == 0
    assert pouch("age", "-d", "-i", k.path, "-o", "-", enc).out == plain.read_bytes()
    assert pouch("age", "-d", "-i", k.path, "-", input=enc.read_bytes()).out == plain.read_bytes()
    # the output file gets the usual mode of a new file
    out = tmp_path / "out.txt"
    pouch("age", "-d", "-i", k.path, "-o", out, enc)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_keygen(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    r = pouch("age-keygen", "-o", key)
    assert r.code == 0 and r.out == b""
    assert r.err.startswith("Public key: age1")
    assert key.stat().st_mode & 0o777 == 0o600
    text = key.read_text().splitlines()
    assert text[0].startswith("# created: ") and text[1] == "# public key: " + r.err[12:].strip()
    again = pouch("age-keygen", "-o", key)
    assert again.code == 10 and "already exists" in again.err
    y = pouch("age-keygen", "-y", key)
    assert y.out.decode() == r.err[12:]

    pq = pouch("age-keygen", "--pq")
    assert pq.out.decode().splitlines()[2].startswith("AGE-SECRET-KEY-PQ-1")
    assert pq.err.startswith("Public key: age1pq1")


def test_post_quantum_cli_round_trip(make_key: Callable[..., KeyFile]) -> None:
    a, b = make_key(pq=True), make_key(pq=True)
    enc = pouch("age", "-r", a.recipient, "-r", b.recipient, "-a", input=b"harvest this")
    assert enc.code == 0
    assert enc.out.count(b"\n") > 50  # two 1,120-byte encapsulations, armored
    for k in (a, b):
        assert pouch("age", "-d", "-i", k.path, input=enc.out).out == b"harvest this"
    classic = make_key()
    r = pouch("age", "-r", a.recipient, "-r", classic.recipient, input=b"x")
    assert r.code == 2
    assert r.err.startswith("error: post-quantum and classic recipients can't be mixed")


def test_recipients_file(make_key: Callable[..., KeyFile], tmp_path: Path) -> None:
    a, b = make_key(), make_key()
    listing = tmp_path / "recipients.txt"
    listing.write_text(f"# Pyongyang\n{a.recipient}\n# Washington\n{b.recipient}\n")
    enc = pouch("age", "-R", listing, input=b"both").out
    for k in (a, b):
        assert pouch("age", "-d", "-i", k.path, input=enc).out == b"both"


def test_special_outputs_are_written_in_place_not_replaced(
    make_key: Callable[..., KeyFile], tmp_path: Path
) -> None:
    k = make_key()
    data = random_bytes(200_000)
    enc = tmp_path / "in.age"
    enc.write_bytes(pouch("age", "-r", k.recipient, input=data).out)
    # a FIFO: read by another process, and still a FIFO afterwards
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    copy = tmp_path / "copy"
    with open(copy, "wb") as sink:
        reader = subprocess.Popen(["cat", fifo], stdout=sink)
        r = pouch("age", "-d", "-i", k.path, "-o", fifo, enc)
        reader.wait(timeout=60)
    assert r.code == 0 and copy.read_bytes() == data
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # a symlink: its target is replaced, the link stays
    target = tmp_path / "target"
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert pouch("age", "-d", "-i", k.path, "-o", link, enc).code == 0
    assert os.path.islink(link) and target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode


def _limit_file_size() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("size", [3 << 20, 20 << 20])  # sequential and parallel paths
def test_a_failed_write_is_a_file_error(
    make_key: Callable[..., KeyFile], tmp_path: Path, size: int
) -> None:
    k = make_key()
    plain = tmp_path / "plain"
    plain.write_bytes(random_bytes(size))
    for args in (["-r", k.recipient], ["-d", "-i", str(k.path)]):
        src = plain if args[0] == "-r" else tmp_path / "plain.age"
        out = tmp_path / ("plain.age" if args[0] == "-r" else "out")
        if args[0] == "-d":
            assert pouch("age", "-r", k.recipient, "-o", src, plain).code == 0
        p = subprocess.run(
            [POUCH, "age", *args, "-o", tmp_path / "limited", src],
            capture_output=True,
            preexec_fn=_limit_file_size,
        )
        assert p.returncode == 9, p.stderr
        limited = tmp_path / "limited"
        said = f"error: cannot write {limited}: File too large; nothing was written"
        assert p.stderr.decode().startswith(said), p.stderr
        assert not (tmp_path / "limited").exists()
        del out


def test_sigterm_cleans_up(make_key: Callable[..., KeyFile], tmp_path: Path) -> None:
    k = make_key()
    plain = tmp_path / "plain"
    plain.write_bytes(random_bytes(64 << 20))
    p = subprocess.Popen(
        [POUCH, "age", "-r", k.recipient, "-o", tmp_path / "out"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdin is not None and p.stderr is not None
    p.stdin.write(plain.read_bytes()[: 8 << 20])
    p.stdin.flush()
    time.sleep(0.5)
    p.terminate()
    p.stdin.close()
    assert p.wait(timeout=60) == 143
    assert p.stderr.read() == b"error: terminated\n"
    assert not (tmp_path / "out").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([k.path.name, "plain"])


def test_a_non_utf8_passphrase_from_the_environment() -> None:
    env = {"POUCH_PASSPHRASE": b"\xff\xfesummit".decode("utf-8", "surrogateescape")}
    enc = pouch("age", "-p", input=b"x", env=env)
    assert enc.code == 0, enc.err
    assert pouch("age", "-d", input=enc.out, env=env).out == b"x"


def test_keys_must_be_in_their_canonical_case(make_key: Callable[..., KeyFile]) -> None:
    k = make_key()
    r = pouch("age", "-r", k.recipient.upper(), input=b"x")
    assert r.code == 3 and "recipients are lower case" in r.err
    lower = k.path.read_text().lower()
    k.path.write_text(lower)
    r = pouch("age", "-d", "-i", k.path, input=b"")
    assert r.code == 3 and "line 3 is not a valid secret key" in r.err
