"""make demo: the seed scenario, as far as pouch has come.

24 May 2018: Donald Trump writes to Kim Jong-un cancelling the Singapore
summit. Kim answers; his former spy chief, Kim Yong-chol, carries the answer
by way of New York to Washington and hands it over. January 2019: Trump's
letter about a second summit is flown to Pyongyang and delivered by hand.

Everything runs for real: the `pouch` command line with real keys in real
homes (passphrase-protected), and the stock `age` for the age layer. Each
step is checked; a failed check stops the demo. Later parts (envoys and
custody, the register, paper) grow from here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pouch.identity import Card

POUCH = str(Path(sys.executable).parent / "pouch")
AGE = shutil.which("age") or "age"

PEOPLE = {
    "trump": ("Donald J. Trump", "Washington, the Oval Office"),
    "kim": ("Kim Jong-un", "Pyongyang"),
    "chol": ("Kim Yong-chol", "Pyongyang, then New York"),
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
        if show_err:
            for line in p.stderr.decode(errors="replace").splitlines():
                say("          " + _short(line))
        if check and p.returncode != 0:
            raise SystemExit(f"demo failed: {' '.join(shown)} exited {p.returncode}")
        return p


def _short(s: str) -> str:
    # post-quantum keys are 1,960 characters: show their ends
    return " ".join(w if len(w) < 80 else f"{w[:24]}…{w[-8:]}" for w in s.split(" "))


def quote(text: str) -> None:
    for line in text.splitlines():
        say("          | " + line)


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
    for who, other in (("trump", "kim"), ("kim", "trump"), ("kim", "chol"), ("chol", "kim")):
        demo.run([POUCH, "contacts", "add", f"{other}.card"], who, show_err=False)
    a = demo.run([POUCH, "fingerprint", "Kim Jong-un", "--no-qr"], "trump").stdout.decode()
    b = demo.run([POUCH, "fingerprint", "Donald J. Trump", "--no-qr"], "kim").stdout.decode()
    numbers_a, numbers_b = a.splitlines()[1:], b.splitlines()[1:]
    assert numbers_a == numbers_b, "safety numbers differ"
    for line in numbers_a:
        say("          " + line.strip())
    say("   both sides read the same twelve groups: they mark each other verified")
    for who, other in (("trump", "Kim Jong-un"), ("kim", "Donald J. Trump"),
                       ("kim", "Kim Yong-chol"), ("chol", "Kim Jong-un")):  # fmt: skip
        demo.run([POUCH, "contacts", "verify", other, "--yes"], who, show_err=False)

    step("3. 24 May 2018: Trump seals his letter cancelling the Singapore summit")
    (d / "cancel.txt").write_text(CANCEL)
    r = demo.run([POUCH, "seal", "-t", "Kim Jong-un", "--subject", "The Singapore summit",
                  "-o", "cancel.pouch", "cancel.txt"], "trump")  # fmt: skip
    cancel_id = r.stderr.decode().split("letter    ")[1].split()[0]
    info = json.loads(demo.run([POUCH, "inspect", "cancel.pouch", "--json"]).stdout)
    say(f"   a carrier sees: envelope {info['envelope_id'][:12]}, {info['size']:,} bytes, "
        f"{info['stanzas']} {info['stanza_types'][0]} stanza; no names, no subject")  # fmt: skip

    step("4. Kim opens it: every signature verified, addressed to him, from a verified contact")
    r = demo.run([POUCH, "open", "cancel.pouch"], "kim")
    assert r.stdout.decode() == CANCEL
    quote(r.stdout.decode())

    step("5. Kim answers, in reply to that letter; Kim Yong-chol carries it to Washington")
    (d / "reply.txt").write_text(REPLY)
    demo.run([POUCH, "seal", "-t", "Donald J. Trump", "--reply-to", cancel_id, "--subject",
              "Your letter of 24 May", "-o", "reply.pouch", "reply.txt"], "kim")  # fmt: skip
    say("   route: Pyongyang -> Beijing -> New York (with Secretary Pompeo) -> Washington")
    r = demo.run([POUCH, "open", "reply.pouch", "--json"], "trump", show_err=False)
    opened = json.loads(r.stdout)
    assert opened["in_reply_to"] == cancel_id and opened["body"] == REPLY
    say(f"   from {opened['from']['name']} (verified: {opened['from']['verified']}), "
        f"in reply to {opened['in_reply_to'][:12]}, {opened['encryption']}")  # fmt: skip
    quote(opened["body"])

    step("6. A copy tampered with in transit: one bit flipped")
    data = bytearray((d / "reply.pouch").read_bytes())
    data[-100] ^= 0x01  # in the payload
    (d / "tampered.pouch").write_bytes(bytes(data))
    r = demo.run([POUCH, "open", "tampered.pouch", "-o", "."], "trump", check=False)
    assert r.returncode == 7 and r.stdout == b""
    say(f"   refused (exit {r.returncode}); nothing was written")

    step("7. A forwarded copy: Kim passes Trump's letter on to his envoy as if it were his")
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

    step("8. The age layer stands alone: stock age and pouch age read each other")
    demo.run([POUCH, "age-keygen", "-o", "pyongyang.key"], show_err=False)
    recipient = (d / "pyongyang.key").read_text().split("# public key: ")[1].split()[0]
    (d / "second.txt").write_text(SECOND)
    demo.run([AGE, "-a", "-r", recipient, "-o", "second.age", "second.txt"])
    r = demo.run([POUCH, "age", "-d", "-i", "pyongyang.key", "second.age"])
    assert r.stdout.decode() == SECOND
    demo.run([POUCH, "age", "-r", recipient, "-o", "second.pouch-age", "second.txt"])
    r = demo.run([AGE, "-d", "-i", "pyongyang.key", "second.pouch-age"])
    assert r.stdout.decode() == SECOND
    say("   January 2019: flown to Pyongyang and delivered by hand; both tools agree")

    say()
    say("all checks passed.")


if __name__ == "__main__":
    main()
