"""Write pouch(1), the manual page, from the commands themselves: every
command's usage, help and options as `pouch CMD --help` shows them.

    python tools/manpage.py OUT      # make man (and make demo) install it
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

from pouch import __version__
from pouch.cli import cli

SYNOPSIS = "pouch: sealed letters, carried by hand."
ENVIRONMENT = {
    "POUCH_HOME": "The pouch home, where --home is not given (default: the user-data "
    "folder, ~/.local/share/pouch).",
    "POUCH_PASSPHRASE": "The passphrase, for scripts and tests (a process's environment is "
    "visible to its owner and to root); else --passphrase-file, else a prompt.",
    "AGE_TESTKIT": "Where make test finds the age conformance vectors.",
}


def roff(text: str) -> str:
    """text made safe for roff: backslashes, and lines that start with a
    control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def commands(
    group: click.Group, ctx: click.Context, prefix: str
) -> list[tuple[str, click.Command, click.Context]]:
    found = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        if isinstance(cmd, click.Group):
            found += commands(cmd, sub, f"{prefix} {name}")
        else:
            found.append((f"{prefix} {name}", cmd, sub))
    return found


def page() -> str:
    root = click.Context(cli, info_name="pouch")
    out = [
        f'.TH POUCH 1 "" "pouch {__version__}" "User Commands"',
        ".SH NAME",
        "pouch \\- sealed letters, carried by hand",
        ".SH SYNOPSIS",
        ".B pouch",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        roff(
            "Letters whose authorship, integrity, custody and delivery are provable, carried "
            "on a USB stick, on paper, or by any channel nobody trusts. Each command below "
            "is also described by 'pouch COMMAND --help'; README.md walks through them."
        ),
        ".SH COMMANDS",
    ]
    for path, cmd, ctx in commands(cli, root, "pouch"):
        out.append(f'.SS "{roff(path)}"')
        out.append(".nf")
        out.append(roff(" ".join([path, *cmd.collect_usage_pieces(ctx)])))
        out.append(".fi")
        if cmd.help:
            out.append(".PP")
            text = inspect.cleandoc(click.unstyle(cmd.help)).replace("\b\n", "")
            out.append(roff(text).replace("\n\n", "\n.PP\n"))
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Argument):
                continue  # named in the usage line
            record = param.get_help_record(ctx)
            if record is None:
                continue
            names, text = record
            out.append(".TP")
            out.append(f"\\fB{roff(names)}\\fR")
            out.append(roff(text))
    out.append(".SH ENVIRONMENT")
    for name, text in ENVIRONMENT.items():
        out += [".TP", f"\\fB{name}\\fR", roff(text)]
    out += [
        ".SH EXIT STATUS",
        roff(
            "0 on success; README.md lists every other code (2: usage, 4: no key or "
            "passphrase matched, 9: a file could not be read or written, ...)."
        ),
        ".SH SEE ALSO",
        "\\fBage\\fR(1)",
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/manpage.py OUT")
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page())
