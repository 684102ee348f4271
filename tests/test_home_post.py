"""The workflows of pouch.home.Post, in process: order, gaps, replays,
forks, lost state and restore, receipts, custody on opening (SPEC.md 5.3).

tests/test_cli_ledger.py drives the same through the CLI, in subprocesses;
here the library is called as a second interface (a local page, a relay
client) would call it, and every fork, restore and lost state is made
through the API and the file system, never by editing the register.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pouch import container
from pouch.errors import BehindError, CustodyError, ForkError, RefusedError
from pouch.home import Home, Post, Received, Sent, check, check_custody_receipt, restore
from pouch.identity import Identity
from pouch.letter import inspect, open_letter

from .vectors.generate import vector_identity

NAMES = {"trump": "Donald J. Trump", "kim": "Kim Jong-un"}


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Home]:
    """Trump and Kim, each with the other's verified card."""
    made = {who: Home(tmp_path / who) for who in NAMES}
    identities = {who: vector_identity(name) for who, name in NAMES.items()}
    for who, home in made.items():
        home.create(identities[who], None)
    made["trump"].add_contact(identities["kim"].card(), verified=True)
    made["kim"].add_contact(identities["trump"].card(), verified=True)
    return made


def _post(home: Home) -> Post:
    return Post(home, home.unlock(lambda: b""))


def _send(home: Home, out: Path, text: str, to: str = "", **options: object) -> Sent:
    body = out.with_suffix(".txt")
    body.write_text(text)
    to = to or ("Kim Jong-un" if home.card().name != "Kim Jong-un" else "Donald J. Trump")
    return _post(home).send([to], body, out, subject=text[:20], **options)  # type: ignore[arg-type]


def _receive(home: Home, path: Path, into: Path | None = None, **options: object) -> Received:
    with container.load(path) as c:
        return _post(home).receive(c, into, **options)  # type: ignore[arg-type]


def test_in_order_a_gap_filled_and_a_replay(homes: dict[str, Home], tmp_path: Path) -> None:
    paths = [tmp_path / f"l{i}.pouch" for i in (1, 2, 3)]
    ids = [_send(homes["trump"], p, f"Letter {i}").letter_id for i, p in enumerate(paths, 1)]
    kim = homes["kim"]
    got = _receive(kim, paths[0])
    assert (got.arrival.kind, got.opened.order and got.opened.order.seq) == ("in order", 1)
    assert got.body == b"Letter 1"
    got = _receive(kim, paths[2])
    assert got.arrival.kind == "gap" and got.arrival.missing == [2]
    assert got.arrival.notes == ["letter #2 from Donald J. Trump has not arrived; #3 refers to it"]
    assert [m.seq for m in _post(kim).ledger("Donald J. Trump").missing] == [2]
    assert _receive(kim, paths[1]).arrival.kind == "fills a gap"
    assert _post(kim).ledger().missing == []
    replay = _receive(kim, paths[1])
    assert replay.arrival.kind == "replay" and replay.arrival.notes[0].startswith("already")
    received = [x for x in _post(kim).ledger().letters if x.direction == "received"]
    assert sorted((x.id, x.seq, x.subject) for x in received) == sorted(
        zip(ids, (1, 2, 3), ("Letter 1", "Letter 2", "Letter 3"), strict=True)
    )
    for home in homes.values():
        assert check(home).problems == []


def test_a_fork_is_refused_every_time_and_both_letters_kept(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    trump, kim = homes["trump"], homes["kim"]
    _send(trump, tmp_path / "l1.pouch", "Letter 1")
    # Trump's home is cloned (a copied laptop); each copy seals its own #2.
    clone = Home(tmp_path / "clone")
    shutil.copytree(trump.path, clone.path)
    a = _send(trump, tmp_path / "a.pouch", "The real #2").letter_id
    b = _send(clone, tmp_path / "b.pouch", "Another #2").letter_id
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("l1.pouch", "a.pouch"):
        _receive(kim, tmp_path / name, inbox)
    before = sorted(inbox.iterdir())
    for found in ("two different letters at #2", "found to fork their stream"):
        with pytest.raises(ForkError, match=found):
            _receive(kim, tmp_path / "b.pouch", inbox)
        assert sorted(inbox.iterdir()) == before  # nothing released
    ledger = _post(kim).ledger()
    assert [(f.seq, {f.letter, f.other}) for f in ledger.forks] == [(2, {a, b})]
    assert {x.id: x.state for x in ledger.letters}[b] == "forked"
    assert len(list(kim.archive().iterdir())) == 3  # both #2 kept, as evidence
    assert check(kim).problems == []


def test_lost_state_is_refused_then_a_new_stream_heals_it(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    trump, kim = homes["trump"], homes["kim"]
    _send(trump, tmp_path / "l1.pouch", "Letter 1")
    backup = tmp_path / "backup"
    shutil.copytree(trump.path, backup)
    for i in (2, 3):
        _send(trump, tmp_path / f"l{i}.pouch", f"Letter {i}")
    for i in (1, 2, 3):
        _receive(kim, tmp_path / f"l{i}.pouch")
    _send(kim, tmp_path / "reply.pouch", "Kim's reply")
    # Trump's disk dies; his home comes back from the backup, without #2 and #3.
    shutil.rmtree(trump.path)
    shutil.copytree(backup, trump.path)
    _receive(trump, tmp_path / "reply.pouch")
    with pytest.raises(BehindError, match="acknowledges your letter #3"):
        _send(trump, tmp_path / "l4.pouch", "After the backup")
    assert not (tmp_path / "l4.pouch").exists()
    restore(trump)
    _send(trump, tmp_path / "l4.pouch", "After the restore")
    got = _receive(kim, tmp_path / "l4.pouch")
    assert got.opened.order is not None and got.opened.order.seq == 1
    assert got.arrival.notes == []  # it continues from #3, which Kim acknowledged
    for home in homes.values():
        assert check(home).problems == []


def test_an_overlap_is_amber_until_a_later_letter_heals_it(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    trump, kim = homes["trump"], homes["kim"]
    _send(trump, tmp_path / "l1.pouch", "Letter 1")
    backup = tmp_path / "backup"
    shutil.copytree(trump.path, backup)
    _send(trump, tmp_path / "l2.pouch", "Letter 2")
    for i in (1, 2):
        _receive(kim, tmp_path / f"l{i}.pouch")
    # Restored, and a new stream started, before hearing from Kim.
    shutil.rmtree(trump.path)
    shutil.copytree(backup, trump.path)
    restore(trump)
    _send(trump, tmp_path / "n1.pouch", "New stream 1")
    notes = _receive(kim, tmp_path / "n1.pouch").arrival.notes
    assert len(notes) == 1 and notes[0].startswith("OVERLAP") and "#2 to #2" in notes[0]
    # Kim's answer acknowledges #2: Trump's next letter continues from there.
    _send(kim, tmp_path / "k1.pouch", "Kim's answer")
    _receive(trump, tmp_path / "k1.pouch")
    _send(trump, tmp_path / "n2.pouch", "New stream 2")
    assert _receive(kim, tmp_path / "n2.pouch").arrival.notes == []


def test_an_acknowledgment_of_a_letter_never_sent_is_reported(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    trump, kim = homes["trump"], homes["kim"]
    # Trump's home as it was before he sealed anything...
    blank = tmp_path / "blank"
    shutil.copytree(trump.path, blank)
    _send(trump, tmp_path / "l1.pouch", "Letter 1")
    _receive(kim, tmp_path / "l1.pouch")
    # ... comes back: it never sent #1, as far as it knows.
    shutil.rmtree(trump.path)
    shutil.copytree(blank, trump.path)
    _send(kim, tmp_path / "k1.pouch", "Kim's answer")
    notes = _receive(trump, tmp_path / "k1.pouch").arrival.notes
    assert len(notes) == 1 and notes[0].startswith("ACKNOWLEDGMENT") and "never sent" in notes[0]


def test_receipts_and_answers_move_a_letter_on(homes: dict[str, Home], tmp_path: Path) -> None:
    trump, kim = homes["trump"], homes["kim"]
    cancel = _send(trump, tmp_path / "cancel.pouch", "Cancelling Singapore").letter_id

    def state() -> str:
        return {x.id: x.state for x in _post(trump).ledger().letters}[cancel]

    assert state() == "sealed"
    handed = _post(trump).hand_over(tmp_path / "cancel.pouch", kim.card(), place="Washington")
    assert (handed.seq, handed.taker.name) == (1, "Kim Jong-un")
    assert state() == "handed over"
    received = _receive(kim, tmp_path / "cancel.pouch")
    sent = _post(kim).send_receipt(received, tmp_path / "receipt.pouch")
    assert [c.name for c in sent.to] == ["Donald J. Trump"] and not sent.completed
    checked = _post(trump).check_receipt(tmp_path / "receipt.pouch", letter_id=cancel)
    assert checked.receipt.letter == cancel and checked.signer == kim.card().fingerprint
    assert checked.receipt.custody == ("handover 1 was never accepted",)
    assert state() == "delivered"
    reply = _send(kim, tmp_path / "reply.pouch", "Ready to meet", in_reply_to=cancel).letter_id
    _receive(trump, tmp_path / "reply.pouch")
    assert state() == "answered"
    thread = _post(trump).thread(reply[:12])
    assert thread.chosen == reply and thread.letters[0][1].id == cancel
    assert {(x.kind, depth) for depth, x in thread.letters[1:]} == {("receipt", 1), ("letter", 1)}
    # The receipt is a letter in Kim's stream to Trump: #1, and the reply #2.
    received_by_trump = [x for x in _post(trump).ledger().letters if x.direction == "received"]
    assert [(x.kind, x.seq) for x in received_by_trump] == [("receipt", 1), ("letter", 2)]
    for home in homes.values():
        assert check(home).problems == []


def test_custody_is_judged_on_opening(homes: dict[str, Home], tmp_path: Path) -> None:
    trump, kim = homes["trump"], homes["kim"]
    _send(trump, tmp_path / "plain.pouch", "Without custody")
    got = _receive(kim, tmp_path / "plain.pouch")
    assert got.custody.problems == ("no custody: nobody signed for this pouch",)
    _send(trump, tmp_path / "carried.pouch", "With custody")
    _post(trump).hand_over(tmp_path / "carried.pouch", kim.card(), place="Panmunjom")
    # Not yet accepted: refused with --require-accredited, nothing written.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(CustodyError) as refused:
        _receive(kim, tmp_path / "carried.pouch", inbox, require_accredited=True)
    assert "handover 1 was never accepted" in refused.value.hints
    assert list(inbox.iterdir()) == []
    receipt = tmp_path / "custody.receipt"
    accepted = _post(kim).accept(tmp_path / "carried.pouch", place="Pyongyang", receipt=receipt)
    got = _receive(kim, tmp_path / "carried.pouch", inbox, require_accredited=True)
    assert got.custody.verified and got.custody.head == accepted.head
    link = got.custody.links[0]
    assert (link.place, link.accepted_at, link.accredited) == (
        "Panmunjom", "Pyongyang", "a principal you know"
    )  # fmt: skip
    assert sorted(p.name for p in inbox.iterdir()) == [Path(got.saved[0]).name]
    # The sender reads the custody receipt: delivered to Kim, and recorded.
    with container.load(receipt) as c:
        delivered = check_custody_receipt(trump, c)
    assert delivered.report.verified and delivered.to == kim.card().signing_key
    letters = _post(trump).ledger().letters
    assert [x.state for x in letters if x.subject == "With custody"] == ["delivered"]


def test_the_archive_keeps_the_bytes_that_were_verified(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    """The container is read through one handle: replacing the file at its
    path after it was opened changes nothing of what is verified and kept."""
    trump, kim = homes["trump"], homes["kim"]
    first = _send(trump, tmp_path / "l1.pouch", "Letter 1")
    _send(trump, tmp_path / "l2.pouch", "Letter 2")
    kept = (tmp_path / "l1.pouch").read_bytes()
    with container.load(tmp_path / "l1.pouch") as c:
        os.replace(tmp_path / "l2.pouch", tmp_path / "l1.pouch")
        got = _post(kim).receive(c)
    assert got.opened.letter_id == first.letter_id
    assert kim.archive(first.envelope_id).read_bytes() == kept
    assert check(kim).problems == []


def test_a_run_of_the_same_send_completes_rather_than_seals_again(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    trump = homes["trump"]
    body, out = tmp_path / "body.txt", tmp_path / "l1.pouch"
    body.write_text("Letter 1")
    post = _post(trump)
    first = post.send(["Kim Jong-un"], str(body), str(out))  # paths as strings, too
    written = out.read_bytes()
    out.unlink()  # as if the first run died before naming its output
    again = post.send(["Kim Jong-un"], body, out)
    assert again.completed and again.letter_id == first.letter_id
    assert out.read_bytes() == written
    with pytest.raises(RefusedError, match="already exists"):
        post.send(["Kim Jong-un"], io.BytesIO(b"another"), out)
    assert [x.id for x in post.ledger().letters] == [first.letter_id]


def test_the_identity_is_unlocked_only_when_needed(homes: dict[str, Home], tmp_path: Path) -> None:
    trump = homes["trump"]
    unlocked: list[Identity] = []

    def unlock() -> Identity:
        unlocked.append(trump.unlock(lambda: b""))
        return unlocked[-1]

    post = Post(trump, unlock)
    # Refused before any key is needed: an unverified contact.
    trump.add_contact(vector_identity("Moon Jae-in").card())
    with pytest.raises(RefusedError, match="never verified"):
        post.send(["Moon Jae-in"], io.BytesIO(b"hello"), tmp_path / "x.pouch")
    assert unlocked == []
    post.send(["Kim Jong-un"], io.BytesIO(b"hello"), tmp_path / "y.pouch")
    post.send(["Kim Jong-un"], io.BytesIO(b"again"), tmp_path / "z.pouch")
    assert len(unlocked) == 1


def test_waiting_for_another_seal_is_a_callback(homes: dict[str, Home], tmp_path: Path) -> None:
    trump = homes["trump"]
    waited: list[str] = []
    asked = threading.Event()

    def on_wait(what: str) -> None:
        waited.append(what)
        asked.set()

    post = Post(trump, trump.unlock(lambda: b""), on_wait=on_wait)
    fd = os.open(trump.path / "seal.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another seal holds the home
    result: list[Sent] = []
    worker = threading.Thread(
        target=lambda: result.append(
            post.send(["Kim Jong-un"], io.BytesIO(b"hello"), tmp_path / "l.pouch")
        )
    )
    worker.start()
    assert asked.wait(30)
    assert waited == ["another 'pouch seal' in this home"] and not result
    os.close(fd)
    worker.join(30)
    assert len(result) == 1 and (tmp_path / "l.pouch").exists()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    "use",
    [
        lambda me, path: inspect(path),
        lambda me, path: open_letter(me, path, lambda part: None),
    ],
    ids=["inspect", "open_letter"],
)
def test_a_path_given_to_the_library_is_closed_again(
    homes: dict[str, Home], tmp_path: Path, use: Callable[[Identity, Path], object]
) -> None:
    trump, kim = homes["trump"], homes["kim"]
    _send(trump, tmp_path / "l1.pouch", "Letter 1")
    me = kim.unlock(lambda: b"")
    before = _open_fds()
    for _ in range(3):
        use(me, tmp_path / "l1.pouch")
    assert _open_fds() == before


def test_a_letter_opened_through_a_symlink_is_archived_itself(
    homes: dict[str, Home], tmp_path: Path
) -> None:
    """The archive keeps the file that was read, not the name it was read
    through: a link to a relative symlink would point nowhere from the
    archive."""
    trump, kim = homes["trump"], homes["kim"]
    sent = _send(trump, tmp_path / "l1.pouch", "Letter 1")
    (tmp_path / "link.pouch").symlink_to("l1.pouch")
    _receive(kim, tmp_path / "link.pouch")
    kept = kim.archive(sent.envelope_id)
    assert not kept.is_symlink() and kept.read_bytes() == (tmp_path / "l1.pouch").read_bytes()
    assert check(kim).problems == []
