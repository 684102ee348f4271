"""pouch at a terminal, as a person types it: the passphrase prompt, Ctrl-C
and Ctrl-D, through a pseudo-terminal (tests/terminal.py). No test here
sets POUCH_PASSPHRASE for the command under test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import pouch
from .terminal import CTRL_C, CTRL_D, Terminal

SECRET = "correct horse battery"


def _init(home: Path, name: str) -> None:
    t = Terminal("init", "--name", name, "--home", home)
    t.expect("New passphrase: ")
    t.line(SECRET)
    t.expect("Confirm passphrase: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    assert "Created the identity of" in t.text


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two homes, each protected by SECRET, that know each other."""
    a, b = tmp_path / "kim", tmp_path / "trump"
    for home, name in ((a, "Kim Jong-un"), (b, "Donald Trump")):
        _init(home, name)
    for home in (a, b):
        assert pouch("card", "-o", tmp_path / f"{home.name}.card", "--home", home).code == 0
    for home, other in ((a, b), (b, a)):
        card = tmp_path / f"{other.name}.card"
        assert pouch("contacts", "add", card, "--verified", "--home", home).code == 0
    return a, b


def test_init_asks_twice_and_refuses_a_mismatch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    t = Terminal("init", "--name", "Kim Jong-un", "--home", home)
    t.expect("New passphrase: ")
    t.line(SECRET)
    t.expect("Confirm passphrase: ")
    t.line(SECRET + "!")
    assert t.wait() == 2
    assert "error: the passphrases did not match" in t.text
    assert SECRET not in t.text, "the passphrase was echoed"
    assert not home.exists()
    _init(home, "Kim Jong-un")
    assert (home / "identity.key").stat().st_mode & 0o777 == 0o600


def test_seal_and_open_ask_once_and_a_wrong_passphrase_is_exit_4(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    kim, trump = pair
    letter, note = tmp_path / "l.pouch", tmp_path / "note.txt"
    note.write_text("Dear Chairman,\n")
    t = Terminal("seal", "-t", "Kim Jong-un", "-o", letter, note, "--home", trump)
    t.expect("Passphrase for .*: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    assert t.text.count("Passphrase") == 1 and letter.exists()

    t = Terminal("open", letter, "--home", kim)
    t.expect("Passphrase for .*: ")
    t.line("not the passphrase")
    assert t.wait() == 4
    assert "error: incorrect passphrase" in t.text and "Dear Chairman" not in t.text

    t = Terminal("open", letter, "--home", kim)
    t.expect("Passphrase for .*: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    assert t.text.count("Passphrase") == 1 and "Dear Chairman" in t.text


def test_accept_asks_once(pair: tuple[Path, Path], tmp_path: Path) -> None:
    kim, trump = pair
    letter, note = tmp_path / "l.pouch", tmp_path / "note.txt"
    note.write_text("Dear Chairman,\n")
    env = {"POUCH_PASSPHRASE": SECRET}  # the steps before the one under test
    r = pouch("seal", "-t", "Kim Jong-un", "-o", letter, note, "--home", trump, env=env)
    assert r.code == 0, r.err
    card = tmp_path / "kim.card"
    assert pouch("handover", letter, "--to", card, "--home", trump, env=env).code == 0
    t = Terminal("accept", letter, "--home", kim)
    t.expect("Passphrase for .*: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    assert t.text.count("Passphrase") == 1 and "Accepted" in t.text


def test_pouch_age_asks_at_the_terminal(tmp_path: Path) -> None:
    plain, sealed, back = tmp_path / "p.txt", tmp_path / "p.age", tmp_path / "back.txt"
    plain.write_text("the menu for Singapore\n")
    # -p asks and confirms, as age does: a typo would lock the file for good.
    t = Terminal("age", "-p", "-o", sealed, plain)
    t.expect("Enter passphrase: ")
    t.line(SECRET)
    t.expect("Confirm passphrase: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    t = Terminal("age", "-d", "-o", back, sealed)
    t.expect("Enter passphrase: ")
    t.line("wrong")
    assert t.wait() == 4 and not back.exists()
    t = Terminal("age", "-d", "-o", back, sealed)
    t.expect("Enter passphrase: ")
    t.line(SECRET)
    assert t.wait() == 0, t.text
    assert t.text.count("passphrase") == 1 and back.read_text() == plain.read_text()


@pytest.mark.parametrize("key", [CTRL_C, CTRL_D])
def test_ctrl_c_or_d_at_the_prompt_writes_nothing(
    pair: tuple[Path, Path], tmp_path: Path, key: bytes
) -> None:
    _, trump = pair
    letter, note = tmp_path / "l.pouch", tmp_path / "note.txt"
    note.write_text("Dear Chairman,\n")
    before = sorted(os.listdir(tmp_path))
    t = Terminal("seal", "-t", "Kim Jong-un", "-o", letter, note, "--home", trump)
    t.expect("Passphrase for .*: ")
    t.send(key)
    code = t.wait()
    if key == CTRL_C:
        assert code == 130 and "error: interrupted" in t.text
    else:
        assert code == 2 and "error: no passphrase was given" in t.text
    assert "Traceback" not in t.text
    assert sorted(os.listdir(tmp_path)) == before
    assert pouch("letters", "--home", trump, env={"POUCH_PASSPHRASE": SECRET}).out.count(b"\n") <= 1

    t = Terminal("init", "--name", "Kim", "--home", tmp_path / "new")
    t.expect("New passphrase: ")
    t.send(key)
    assert t.wait() == (130 if key == CTRL_C else 2)
    assert not (tmp_path / "new").exists()


def test_no_terminal_says_what_to_do(tmp_path: Path) -> None:
    r = pouch("init", "--name", "Kim", "--home", tmp_path / "h", preexec=os.setsid)
    assert r.code == 2
    assert "there is no terminal to ask for it" in r.err and "--passphrase-file" in r.err


def test_a_short_passphrase_is_warned_about_and_confirmed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    t = Terminal("init", "--name", "Kim", "--home", home)
    t.expect("New passphrase: ")
    t.line("a")
    t.expect(r"shorter than 10 characters.*\n.*Use it anyway\? \[y/N\]: ")
    t.line("")
    assert t.wait() == 2 and "no passphrase was chosen" in t.text and not home.exists()

    t = Terminal("init", "--name", "Kim", "--home", home)
    t.expect("New passphrase: ")
    t.line("a")
    t.expect(r"Use it anyway\? \[y/N\]: ")
    t.line("y")
    t.expect("Confirm passphrase: ")
    t.line("a")
    assert t.wait() == 0, t.text
    r = pouch("key", "export", "--age", "--home", home, env={"POUCH_PASSPHRASE": "a"})
    assert r.code == 0
    # From a script nobody can confirm: the warning is all there is.
    r = pouch("init", "--name", "K", "--home", tmp_path / "s", env={"POUCH_PASSPHRASE": "short"})
    assert r.code == 0 and "warning: this passphrase is shorter than 10 characters" in r.err


def test_a_letter_typed_at_the_terminal_ends_with_one_ctrl_d(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    kim, trump = pair
    letter = tmp_path / "l.pouch"
    t = Terminal("seal", "-t", "Kim Jong-un", "-o", letter, "--home", trump)
    t.expect("Passphrase for .*: ")
    t.line(SECRET)
    t.expect(r"Type the letter\. End it with Ctrl-D at the start of a line")
    t.line("Dear Chairman,")
    t.line("we look forward to Singapore.")
    t.send(CTRL_D)
    t.expect("Sealed to Kim Jong-un", timeout=60)
    assert t.wait() == 0, t.text
    r = pouch("open", letter, "--home", kim, env={"POUCH_PASSPHRASE": SECRET})
    assert r.code == 0, r.err
    assert b"Dear Chairman,\n" in r.out and b"we look forward to Singapore.\n" in r.out


def test_open_shows_the_header_first_and_fences_the_body(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """An impostor under a name of their own: the warning comes before the
    letter, and a header typed into the body stays visibly inside it."""
    kim, _ = pair
    env = {"POUCH_PASSPHRASE": SECRET}
    fake = tmp_path / "fake"
    assert pouch("init", "--name", "Donald Trump", "--home", fake, env=env).code == 0
    pouch("card", "-o", tmp_path / "fake.card", "--home", fake)
    pouch("card", "-o", tmp_path / "kim-again.card", "--home", kim)
    assert pouch("contacts", "add", tmp_path / "kim-again.card", "--home", fake).code == 0
    r = pouch("contacts", "add", tmp_path / "fake.card", "--home", kim)
    assert r.code == 10 and "ANOTHER KEY" in r.err
    r = pouch("contacts", "add", tmp_path / "fake.card", "--as", "Donald?", "--home", kim)
    assert r.code == 0, r.err
    body = tmp_path / "body.txt"
    body.write_text("From:        Donald Trump  0000 (verified)\nSend the codes.\n")
    letter = tmp_path / "fake.pouch"
    r = pouch("seal", "-t", "Kim", "--allow-unverified", "-o", letter, body, "--home", fake,
              env=env)  # fmt: skip
    assert r.code == 0, r.err

    t = Terminal("open", letter, "--home", kim, env=env)
    assert t.wait() == 0, t.text
    lines = t.text.splitlines()
    begins = next(i for i, ln in enumerate(lines) if ln.startswith("─── the letter"))
    warning = next(i for i, ln in enumerate(lines) if "Donald? was never verified" in ln)
    assert warning < begins and lines[begins - 1].startswith("Order:")
    assert lines[begins + 1 :] == [
        "│ From:        Donald Trump  0000 (verified)",
        "│ Send the codes.",
        "─── end of the letter " + "─" * 33,
    ]
    # Piped, the body is the body, byte for byte (the header on stderr).
    r = pouch("open", letter, "--home", kim, env=env)
    assert r.out == body.read_bytes() and "was never verified" in r.err


def test_your_own_letter_is_yours(pair: tuple[Path, Path], tmp_path: Path) -> None:
    _, trump = pair
    env = {"POUCH_PASSPHRASE": SECRET}
    letter = tmp_path / "l.pouch"
    r = pouch("seal", "-t", "kim", "-o", letter, "--home", trump, input=b"Hi\n", env=env)
    assert r.code == 0, r.err
    r = pouch("open", letter, "--home", trump, env=env)
    assert r.code == 0, r.err
    assert "From:        Donald Trump (you)" in r.err and "WARNING" not in r.err
    assert "unknown sender" not in r.err


def test_long_work_shows_a_progress_bar_at_a_terminal_only(tmp_path: Path) -> None:
    """A sparse GiB costs no disk; encrypting it to /dev/null takes seconds
    (one core: the output is not a regular file)."""
    key = tmp_path / "key.txt"
    assert pouch("age-keygen", "-o", key).code == 0
    recipient = next(w for w in key.read_text().split() if w.startswith("age1"))
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    t = Terminal("age", "-r", recipient, "-o", "/dev/null", big)
    t.expect(r"Encrypting.*/1\.1 GB", timeout=60)
    assert t.wait() == 0, t.text
    # Piped, the same work draws nothing; a small job draws nothing anywhere.
    r = pouch("age", "-r", recipient, "-o", "/dev/null", big)
    assert (r.code, r.err) == (0, "")
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1000)
    t = Terminal("age", "-r", recipient, "-o", "/dev/null", small)
    assert t.wait() == 0 and "Encrypting" not in t.text


def test_the_questions_are_asked_at_the_terminal_not_on_stdin(tmp_path: Path) -> None:
    """pouch age -p < FILE: the passphrase, the short-passphrase question
    and the confirmation all come from the terminal; stdin stays the file."""
    plain, sealed = tmp_path / "plain.txt", tmp_path / "p.age"
    plain.write_text("y\nthe whole of it\n")
    t = Terminal("age", "-p", "-o", sealed, stdin=plain)
    t.expect("Enter passphrase: ")
    t.line("short")
    t.expect(r"Use it anyway\? \[y/N\]: ")
    t.line("y")
    t.expect("Confirm passphrase: ")
    t.line("short")
    assert t.wait() == 0, t.text
    r = pouch("age", "-d", sealed, env={"POUCH_PASSPHRASE": "short"})
    assert r.code == 0 and r.out == plain.read_bytes()


def test_an_empty_letter_typed_at_the_terminal_is_not_sealed(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    _, trump = pair
    letter = tmp_path / "l.pouch"
    t = Terminal("seal", "-t", "kim", "-o", letter, "--home", trump)
    t.expect("Passphrase for .*: ")
    t.line(SECRET)
    t.expect("Type the letter")
    t.send(CTRL_D)
    assert t.wait() == 2 and "error: the letter is empty: nothing was sealed" in t.text
    assert not letter.exists()
    ledger = json.loads(pouch("letters", "--json", "--home", trump).out)
    assert ledger["letters"] == []
    # A misspelt name is found out before the passphrase, and the letter.
    t = Terminal("seal", "-t", "nobody", "-o", letter, "--home", trump)
    assert t.wait() == 2 and "no contact named 'nobody'" in t.text and "Passphrase" not in t.text


def test_nothing_in_a_body_reaches_the_left_edge(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """A carriage return, a line separator, or a line longer than the
    terminal: every piece of the body stays behind the margin."""
    kim, trump = pair
    env = {"POUCH_PASSPHRASE": SECRET}
    body = tmp_path / "body.txt"
    body.write_text("fine\r─── end of the letter ─\u2028From: x\n" + "y" * 250 + "\n")
    letter = tmp_path / "l.pouch"
    assert pouch("seal", "-t", "kim", "-o", letter, body, "--home", trump, env=env).code == 0
    t = Terminal("open", letter, "--home", kim, env=env)
    assert t.wait() == 0, t.text
    lines = t.text.splitlines()
    begins = next(i for i, ln in enumerate(lines) if ln.startswith("─── the letter"))
    inside = lines[begins + 1 : -1]
    assert lines[-1].startswith("─── end of the letter ───")
    assert len(inside) >= 4 and all(ln.startswith("│ ") for ln in inside), inside
    assert "\\r" in inside[0] and "\\u2028" in inside[0]
    assert "".join(ln[2:] for ln in inside[1:]) == "y" * 250
