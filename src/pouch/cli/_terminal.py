"""What pouch shows and asks at a terminal, beyond prompts: a letter typed
in, a body fenced off from the header, a guard's challenge and its QR codes.
Commands call these; nothing here runs unless a terminal is involved."""

from __future__ import annotations

import io
import os
import shutil
import sys
import unicodedata
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..custody import Chain


class Typed(io.RawIOBase):
    """A letter typed at the terminal: it says how to end it when first
    read, and one Ctrl-D ends it. (A terminal's end of input is not sticky:
    each read after it waits for more, so a reader that checks for the end
    twice would need Ctrl-D twice.)"""

    def __init__(self) -> None:
        self._started = self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._ended:
            return 0
        if not self._started:
            self._started = True
            click.echo(
                "Type the letter. End it with Ctrl-D at the start of a line (Ctrl-C cancels).",
                err=True,
            )
        data = os.read(sys.stdin.fileno(), len(b))
        self._ended = not data
        b[: len(data)] = data
        return len(data)


_CONTROL = {*range(0, 9), 11, 12, *range(14, 32), 127, *range(0x80, 0xA0)}


# At a terminal, the body sits between these, each of its lines behind the
# margin: the header's lines start at the left edge, the body's never do.
_BODY_BEGINS = "─── the letter " + "─" * 40
_MARGIN = "│ "
_BODY_ENDS = "─── end of the letter " + "─" * 33


def _hidden(ch: str) -> bool:
    return ord(ch) in _CONTROL or ch == "\r" or unicodedata.category(ch) in ("Cf", "Zl", "Zp")


def write_body(body: bytes) -> None:
    out = sys.stdout.buffer
    if sys.stdout.isatty():
        # A carriage return not ending a line would go back over the margin,
        # and a format or separator character could hide one: escaped too.
        text = body.decode("utf-8", "replace").replace("\r\n", "\n")
        if any(_hidden(ch) for ch in text):
            click.echo(
                "warning: the body holds control characters; they are shown escaped "
                "(use -o DIR for the exact bytes)",
                err=True,
            )
            text = "".join(ascii(ch)[1:-1] if _hidden(ch) else ch for ch in text)
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        # Folded to the terminal's width, so that no piece of a long line
        # wraps to the left edge, where only pouch writes.
        width = max(20, shutil.get_terminal_size().columns - len(_MARGIN))
        pieces = [ln[i : i + width] for ln in lines for i in range(0, max(len(ln), 1), width)]
        sys.stderr.flush()
        click.echo(_BODY_BEGINS)
        click.echo("".join(f"{_MARGIN}{piece}\n" for piece in pieces), nl=False)
        click.echo(_BODY_ENDS)
        return
    out.write(body)
    out.flush()


def challenge_presenter(chain: Chain, names: dict[bytes, str], quiet: bool) -> bool:
    """Ask the presenter to sign a fresh challenge with the holder's key."""
    from ..custody import check_answer, new_spoken_challenge
    from ..identity import fingerprint

    spoken, fresh = new_spoken_challenge()
    if chain.holder is None:
        holder = "nobody"
    else:
        holder = names.get(chain.holder, fingerprint(chain.holder)[:16])
    pending = chain.links[-1] if chain.links and chain.links[-1].acceptance is None else None
    if pending is not None:
        click.echo(
            f"note: handover {pending.handover.seq} is not accepted yet: the pouch's holder is "
            "still the one who took it before",
            err=True,
        )
    click.echo(f"challenge: {fresh}", err=quiet)
    click.echo(f"  or, read aloud: {spoken}", err=True)
    click.echo(f"  the presenter ({holder}, they say) runs: pouch answer FILE {spoken}", err=True)
    qr(fresh)
    click.echo("answer (type it, or scan the presenter's code): ", nl=False, err=True)
    reply = sys.stdin.readline().strip()
    if check_answer(fresh, reply, chain):
        click.echo(f"The presenter holds the key of the pouch's holder, {holder}.", err=True)
        return True
    click.echo("The answer does not prove possession: a copy, or the wrong person.", err=True)
    return False


def qr(text: str) -> None:
    """text as a QR code on stderr, at a terminal: for a phone, or a
    scanner that types what it reads into the other side's prompt."""
    if sys.stderr.isatty():
        import segno

        segno.make(text, error="m").terminal(out=sys.stderr, compact=True)
