"""make demo: the seed scenario, as far as pouch has come.

24 May 2018: Donald Trump writes to Kim Jong-un cancelling the Singapore
summit. Kim answers; his former spy chief, Kim Yong-chol, carries the answer
by way of New York to Washington and hands it over. January 2019: Trump's
letter about a second summit is flown to Pyongyang and delivered by hand.

Everything runs for real: the `pouch` command line with real keys in real
homes (passphrase-protected), and the stock `age` for the age layer. Each
step is checked; a failed check stops the demo. Envoys carry the letters
under credentials, every handover is signed by both parties, and a guard
checks the chain at the door. Later parts (receipts, the register, paper)
grow from here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pouch import container
from pouch.identity import Card

POUCH = str(Path(sys.executable).parent / "pouch")
AGE = shutil.which("age") or "age"

PEOPLE = {
    "trump": ("Donald J. Trump", "Washington, the Oval Office"),
    "kim": ("Kim Jong-un", "Pyongyang"),
    "chol": ("Kim Yong-chol", "Pyongyang, then New York"),
    "pompeo": ("Mike Pompeo", "New York, then Washington"),
    "courier": ("US courier", "Washington to Pyongyang"),
    "guard": ("White House guard", "the door of the West Wing"),
}

CANCEL = """\
Washington, 24 May 2018

Dear Mr. Chairman,

We had looked forward to meeting you in Singapore on 12 June. Given the
tone of your most recent statements, I believe it is not the right time
for that meeting, and it will not take place. If you change your mind
about this most important summit, please do not hesitate to write.

Donald J. Trump
"""

REPLY = """\
Pyongyang, 30 May 2018

Mr President,

We received your letter of 24 May. We regret the decision to call off the
meeting in Singapore, but our side remains ready to sit down at any time
and in any form. Kim Yong-chol carries this answer to Washington by hand.

Kim Jong-un
"""

LOST = """\
Washington, 5 February 2019

Chairman Kim,

We have settled on Hanoi, on 27 and 28 February. I look forward to it.

Donald J. Trump
"""

NEXT = """\
Washington, 8 February 2019

Chairman Kim,

Secretary Pompeo will lead our delegation; Stephen Biegun goes ahead of it.

Donald J. Trump
"""

SECOND = """\
Washington, 14 January 2019

Chairman Kim,

Our teams have looked at Bangkok, Hanoi and Hawaii for a second meeting.
I hope your envoy can come to Washington soon to settle the details.

Donald J. Trump
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title}")


class Demo:
    def __init__(self, d: Path) -> None:
        self.d = d

    def run(
        self,
        args: list[str | Path],
        who: str | None = None,
        check: bool = True,
        show_err: bool = True,
        input: bytes | None = None,
        show_out: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        shown = ["pouch" if a == POUCH else "age" if a == AGE else str(a) for a in args]
        env = dict(os.environ)
        if who is not None:
            shown += ["--home", who]
            args = [*args, "--home", self.d / who]
            env["POUCH_PASSPHRASE"] = f"the passphrase of {PEOPLE[who][0]}"
        say(f"   {who or '':>5}$ " + " ".join(_short(a) for a in shown))
        p = subprocess.run(
            [str(a) for a in args], cwd=self.d, capture_output=True, env=env, input=input
        )
        if show_out:
            for line in p.stdout.decode(errors="replace").splitlines():
                say("          " + _short(line))
        if show_err:
            for line in p.stderr.decode(errors="replace").splitlines():
                say("          " + _short(line))
        if check and p.returncode != 0:
            raise SystemExit(f"demo failed: {' '.join(shown)} exited {p.returncode}")
        return p

    def challenge(self, pouch: str, guard: str, presenter: str) -> bool:
        """The guard's `pouch custody --challenge`, answered by the presenter's
        `pouch answer`: two processes, as at a real door."""
        env = {**os.environ, "POUCH_PASSPHRASE": f"the passphrase of {PEOPLE[presenter][0]}"}
        p = subprocess.Popen(
            [POUCH, "custody", pouch, "--challenge", "--home", str(self.d / guard)],
            cwd=self.d, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert p.stdout is not None
        line = ""
        while not line.startswith("challenge: "):
            line = p.stdout.readline()
        fresh = line.split()[1]
        say(f"   guard$ pouch custody {pouch} --challenge  ->  {fresh[:28]}…")
        answer = subprocess.run(
            [POUCH, "answer", pouch, fresh, "--home", str(self.d / presenter)],
            cwd=self.d, capture_output=True, env=env,
        )  # fmt: skip
        said = answer.stdout.decode().strip()[:28] or answer.stderr.decode().strip()[:60]
        say(f"   {presenter:>5}$ pouch answer {pouch} {fresh[:20]}…  ->  {said}")
        _, err = p.communicate(answer.stdout.decode() + "\n", timeout=120)
        verdict = [ln for ln in err.splitlines() if "presenter" in ln or "answer does" in ln]
        say("          " + (verdict[-1] if verdict else "(no verdict)"))
        return p.returncode == 0


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d")


def _short(s: str) -> str:
    # post-quantum keys are 1,960 characters: show their ends
    return " ".join(w if len(w) < 80 else f"{w[:24]}…{w[-8:]}" for w in s.split(" "))


def quote(text: str) -> None:
    for line in text.splitlines():
        say("          | " + line)


def _damage(page: Path, photo: Path) -> str:
    """What the road does to paper: a corner torn off, a coffee stain, the
    page fed crooked into the scanner, a poor JPEG."""
    from PIL import Image, ImageDraw

    image = Image.open(page).convert("L")
    w, h = image.size
    draw = ImageDraw.Draw(image)
    draw.polygon([(w, h * 0.55), (w, h), (w * 0.45, h)], fill=90)
    draw.ellipse([w * 0.35, h * 0.30, w * 0.62, h * 0.47], fill=70)
    image.rotate(2.5, expand=True, fillcolor=255).save(photo, quality=60)
    return "rotated 2.5 degrees, JPEG quality 60"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pouch-demo-") as tmp:
        play(Demo(Path(tmp)))


def play(demo: Demo) -> None:
    d = demo.d
    say("pouch demo: sealed letters, carried by hand")
    say(f"working in {d}")

    step("1. Each principal (and the envoy) makes an identity, passphrase-protected")
    for who, (name, _) in PEOPLE.items():
        demo.run([POUCH, "init", "--name", name], who, show_err=False)
        demo.run([POUCH, "card", "-o", f"{who}.card"], who)
    key = (d / "kim" / "identity.key").read_bytes().split(b"\n")[1].decode()
    say(f"   identity.key is 0600 and age-encrypted: '{key[:10]}… {key.split()[-1]}' (scrypt 2^18)")

    step("2. Cards are exchanged and verified in person: the safety numbers match")
    met = [("trump", "kim"), ("kim", "trump"), ("kim", "chol"), ("chol", "kim"),
           ("trump", "pompeo"), ("pompeo", "trump"), ("chol", "pompeo"), ("pompeo", "chol"),
           ("trump", "courier"), ("courier", "trump"),
           ("guard", "trump"), ("guard", "kim")]  # fmt: skip
    for who, other in met:
        demo.run([POUCH, "contacts", "add", f"{other}.card", "--verified"], who, show_err=False)
    say("   (each pair above met in person; Trump and Kim compare their numbers here)")
    a = demo.run([POUCH, "fingerprint", "Kim Jong-un", "--no-qr"], "trump").stdout.decode()
    b = demo.run([POUCH, "fingerprint", "Donald J. Trump", "--no-qr"], "kim").stdout.decode()
    numbers_a, numbers_b = a.splitlines()[1:], b.splitlines()[1:]
    assert numbers_a == numbers_b, "safety numbers differ"
    for line in numbers_a:
        say("          " + line.strip())
    say("   both sides read the same twelve groups")

    step("3. 24 May 2018: Trump seals his letter cancelling the Singapore summit")
    (d / "cancel.txt").write_text(CANCEL)
    r = demo.run([POUCH, "seal", "-t", "Kim Jong-un", "--subject", "The Singapore summit",
                  "-o", "cancel.pouch", "cancel.txt"], "trump")  # fmt: skip
    cancel_id = r.stderr.decode().split("letter    ")[1].split()[0]
    info = json.loads(demo.run([POUCH, "inspect", "cancel.pouch", "--json"]).stdout)
    say(f"   a carrier sees: envelope {info['envelope_id'][:12]}, {info['size']:,} bytes, "
        f"{info['stanzas']} {info['stanza_types'][0]} stanzas; no names, no subject")  # fmt: skip

    step("4. Kim opens it: every signature verified, addressed to him, from a verified contact")
    r = demo.run([POUCH, "open", "cancel.pouch"], "kim")
    assert r.stdout.decode() == CANCEL
    quote(r.stdout.decode())

    step("5. Kim answers, in reply to that letter, and accredits Kim Yong-chol to carry it")
    (d / "reply.txt").write_text(REPLY)
    demo.run([POUCH, "seal", "-t", "Donald J. Trump", "--reply-to", cancel_id, "--subject",
              "Your letter of 24 May", "-o", "reply.pouch", "reply.txt"], "kim")  # fmt: skip
    say("   and prints a paper copy, for a second bag, in case the stick is taken at a border:")
    demo.run([POUCH, "print", "reply.pouch", "-o", "reply.pdf", "--png", "reply-pages"],
             show_out=True)  # fmt: skip
    demo.run([POUCH, "accredit", "Kim Yong-chol", "--role", "envoy", "--for", "Donald J. Trump",
              "-o", "chol.credential"], "kim")  # fmt: skip
    say("   the scope names Trump, so it travels sealed: Kim sends it to Trump in a letter")
    (d / "envoy.txt").write_text("My envoy, Kim Yong-chol, carries my answer.\n")
    demo.run([POUCH, "seal", "-t", "Donald J. Trump", "--subject", "My envoy", "-A",
              "chol.credential", "-A", "chol.credential.scope", "-o", "envoy.pouch", "envoy.txt"],
             "kim", show_err=False)  # fmt: skip
    (d / "trump-inbox").mkdir()
    demo.run([POUCH, "open", "envoy.pouch", "-o", "trump-inbox"], "trump", show_err=False)
    demo.run([POUCH, "credentials", "add", "trump-inbox/chol.credential", "--scope",
              "trump-inbox/chol.credential.scope"], "trump")  # fmt: skip
    demo.run([POUCH, "accredit", "Mike Pompeo", "--role", "receiver", "-o", "pompeo.credential"],
             "trump")  # fmt: skip
    demo.run([POUCH, "credentials", "add", "pompeo.credential"], "guard")
    say("   (Trump gives the White House guard Pompeo's credential)")

    step("6. Pyongyang -> New York -> the White House, every handover signed by both sides")
    demo.run([POUCH, "handover", "reply.pouch", "--to", "Kim Yong-chol", "--at", "Pyongyang"],
             "kim")  # fmt: skip
    demo.run([POUCH, "accept", "reply.pouch", "--at", "Pyongyang"], "chol")
    say("   Kim Yong-chol flies by way of Beijing to New York, and meets Secretary Pompeo there")
    say("   At the door of the West Wing, the guard checks the pouch and challenges its bearer:")
    ok = demo.challenge("reply.pouch", "guard", "chol")
    assert ok, "the envoy could not answer the challenge"
    say("   Pompeo shows his credential; Kim Yong-chol's handover will carry it")
    demo.run([POUCH, "credentials", "add", "pompeo.credential"], "chol")
    demo.run([POUCH, "handover", "reply.pouch", "--to", "Mike Pompeo", "--at", "the White House",
              "--note", "delivered by hand"], "chol")  # fmt: skip
    say("   Pompeo takes it for the President without opening it, and signs a custody receipt")
    demo.run([POUCH, "accept", "reply.pouch", "--at", "the White House",
              "--receipt", "delivery.receipt"], "pompeo")  # fmt: skip
    demo.run([POUCH, "custody", "reply.pouch"], "guard", show_out=True)
    say("   Someone with only a copy of the pouch cannot answer for it:")
    assert not demo.challenge("reply.pouch", "guard", "courier")
    say("   Kim Yong-chol flies home with the custody receipt; Kim checks the delivery:")
    demo.run([POUCH, "receipt", "delivery.receipt"], "kim", show_out=True)

    step("7. Trump opens it, requiring an accredited chain of custody, and sends a receipt")
    r = demo.run([POUCH, "open", "reply.pouch", "--require-accredited", "--json",
                  "--receipt", "receipt.pouch"], "trump", show_err=False)  # fmt: skip
    opened = json.loads(r.stdout)
    assert opened["in_reply_to"] == cancel_id and opened["body"] == REPLY
    assert opened["custody"]["verified"]
    say(f"   from {opened['from']['name']} (verified: {opened['from']['verified']}), "
        f"in reply to {opened['in_reply_to'][:12]}, {opened['encryption']}")  # fmt: skip
    for link in opened["custody"]["links"]:
        say(f"   custody {link['seq']}: {link['from']} -> {link['to']} at {link['place']}, "
            f"accepted; taker: {link['accredited']}")  # fmt: skip
    quote(opened["body"])
    say("   the receipt travels back to Pyongyang; Kim reads it:")
    reply_id = opened["letter_id"]
    demo.run([POUCH, "receipt", "receipt.pouch", "--letter", reply_id], "kim", show_out=True)

    step("8. The paper copy: torn and stained on the way, scanned at the White House, opened")
    damaged = _damage(d / "reply-pages" / "page-01.png", d / "photo-of-page-1.jpg")
    say(f"   page 1 arrives with its corner torn off and a coffee stain ({damaged})")
    demo.run([POUCH, "scan", "photo-of-page-1.jpg", "-o", "scanned.pouch"], show_out=True)
    r = demo.run([POUCH, "open", "scanned.pouch", "--json"], "trump", show_err=False)
    again = json.loads(r.stdout)
    assert again["letter_id"] == opened["letter_id"] and again["body"] == REPLY
    say(f"   the same letter, byte for byte as printed: letter {again['letter_id'][:12]}, every "
        f"signature verified; Trump's register: {again['order']['arrival']}")  # fmt: skip

    step("9. A copy tampered with in transit: one bit flipped")
    data = bytearray((d / "reply.pouch").read_bytes())
    age_end = container.HEADER.size + container.HEADER.unpack(data[: container.HEADER.size])[-1]
    data[age_end - 100] ^= 0x01  # in the payload, before the custody trailer
    (d / "tampered.pouch").write_bytes(bytes(data))
    r = demo.run([POUCH, "open", "tampered.pouch", "-o", "."], "trump", check=False)
    assert r.returncode == 7 and r.stdout == b""
    say(f"   refused (exit {r.returncode}); nothing was written")

    step("10. A forwarded copy: Kim passes Trump's letter on to his envoy as if it were his")
    demo.run([POUCH, "inspect", "cancel.pouch", "--extract-age", "cancel.age"])
    key = demo.run([POUCH, "key", "export", "--age"], "kim", show_err=False).stdout
    (d / "kim-age.key").write_bytes(key)
    (d / "kim-age.key").chmod(0o600)
    inner = demo.run([POUCH, "age", "-d", "-i", "kim-age.key", "cancel.age"]).stdout
    chol_pq = str(Card.from_bytes((d / "chol.card").read_bytes().strip()).pq)
    demo.run([POUCH, "age", "-r", chol_pq, "-o", "forwarded.age"], input=inner)
    r = demo.run([POUCH, "open", "forwarded.age"], "chol", check=False)
    assert r.returncode == 12
    say("   the signed header names Kim, not Kim Yong-chol: refused (exit 12)")

    step("11. January 2019: Trump's letter is flown to Pyongyang by a US courier")
    (d / "second.txt").write_text(SECOND)
    demo.run([POUCH, "seal", "-t", "Kim Jong-un", "--subject", "A second summit",
              "-o", "second.pouch", "second.txt"], "trump")  # fmt: skip
    demo.run([POUCH, "handover", "second.pouch", "--to", "US courier", "--at", "Washington"],
             "trump")  # fmt: skip
    demo.run([POUCH, "accept", "second.pouch", "--at", "Washington"], "courier")
    say("   Trump forgot to accredit the courier: anyone checking the pouch is warned")
    r = demo.run([POUCH, "custody", "second.pouch"], "kim", check=False, show_out=True)
    assert r.returncode == 13
    demo.run([POUCH, "accredit", "US courier", "--role", "envoy", "--from", _today(),
              "-o", "courier.credential"], "trump")  # fmt: skip
    demo.run([POUCH, "credentials", "add", "courier.credential"], "kim")
    say("   (the credential reaches Kim; it covers the flight)")
    demo.run([POUCH, "handover", "second.pouch", "--to", "kim.card", "--at", "Pyongyang",
              "--note", "delivered by hand"], "courier")  # fmt: skip
    demo.run([POUCH, "accept", "second.pouch", "--at", "Pyongyang"], "kim")
    r = demo.run([POUCH, "open", "second.pouch", "--require-accredited"], "kim")
    assert r.stdout.decode() == SECOND
    quote(r.stdout.decode())

    step("12. The age layer stands alone: stock age and pouch age read each other")
    demo.run([POUCH, "age-keygen", "-o", "pyongyang.key"], show_err=False)
    recipient = (d / "pyongyang.key").read_text().split("# public key: ")[1].split()[0]
    demo.run([AGE, "-a", "-r", recipient, "-o", "second.age", "second.txt"])
    r = demo.run([POUCH, "age", "-d", "-i", "pyongyang.key", "second.age"])
    assert r.stdout.decode() == SECOND
    demo.run([POUCH, "age", "-r", recipient, "-o", "second.pouch-age", "second.txt"])
    r = demo.run([AGE, "-d", "-i", "pyongyang.key", "second.pouch-age"])
    assert r.stdout.decode() == SECOND
    say("   any age implementation reads pouch's outer layer, and the other way round")

    step("13. Each side's register: the whole correspondence, in order")
    (d / "lost.txt").write_text(LOST)
    demo.run([POUCH, "seal", "-t", "Kim Jong-un", "--subject", "Hanoi, 27 February",
              "-o", "lost.pouch", "lost.txt"], "trump", show_err=False)  # fmt: skip
    say("   that letter's bag goes astray on the way; the next one arrives first:")
    (d / "next.txt").write_text(NEXT)
    demo.run([POUCH, "seal", "-t", "Kim Jong-un", "--subject", "The delegations",
              "-o", "next.pouch", "next.txt"], "trump", show_err=False)  # fmt: skip
    r = demo.run([POUCH, "open", "next.pouch", "--json"], "kim", show_err=False)
    order = json.loads(r.stdout)["order"]
    assert order["arrival"] == "gap" and order["missing"], order
    say(f"   Kim's register: {order['notes'][0]}")
    say("   a copy of the May 2018 cancellation is delivered again:")
    r = demo.run([POUCH, "open", "cancel.pouch", "--json"], "kim", show_err=False)
    assert json.loads(r.stdout)["order"]["arrival"] == "replay"
    say("   Kim's register: a replay, already recorded; nothing is counted twice")
    say("   the lost bag turns up, and fills the gap:")
    r = demo.run([POUCH, "open", "lost.pouch", "--json"], "kim", show_err=False)
    assert json.loads(r.stdout)["order"]["arrival"] == "fills a gap"
    demo.run([POUCH, "letters"], "trump", show_out=True)
    demo.run([POUCH, "letters"], "kim", show_out=True)
    for who in ("trump", "kim"):
        demo.run([POUCH, "db", "check"], who, show_out=True)
    say("   years later the letters are published; a historian checks the transcript")
    say("   against the two cards alone:")
    demo.run([POUCH, "transcript", "export", "Kim Jong-un", "-o", "correspondence.tar",
              "--decrypted"], "trump")  # fmt: skip
    r = demo.run([POUCH, "transcript", "verify", "correspondence.tar", "--card", "trump.card",
                  "--card", "kim.card"], show_out=True)  # fmt: skip
    assert b"Transcript verifies" in r.stdout

    say()
    say("all checks passed.")


if __name__ == "__main__":
    main()
