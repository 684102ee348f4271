"""A pseudo-terminal for tests: the real pouch command, run as a person runs
it at a terminal, with its prompts, echo, Ctrl-C and Ctrl-D.

The child gets a new session whose controlling terminal is the pty's slave
side (os.forkpty), so /dev/tty is that terminal, as it is under xterm or
tmux. stdin, stdout and stderr are the terminal too, unless the test gives
files for them.
"""

from __future__ import annotations

import os
import re
import select
import signal
import time
from pathlib import Path

from .conftest import POUCH

CTRL_C = b"\x03"
CTRL_D = b"\x04"


class Terminal:
    """One command at a pseudo-terminal. Read what it shows with expect(),
    type with send(); wait() for its exit code."""

    def __init__(
        self,
        *args: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: Path | None = None,
        stdout: Path | None = None,
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if k != "POUCH_PASSPHRASE"}
        full_env.update({"TERM": "xterm", "COLUMNS": "100", "LINES": "40"})
        full_env.update(env or {})
        argv = [str(POUCH), *map(str, args)]
        pid, fd = os.forkpty()
        if pid == 0:  # the child: become the command
            try:
                if cwd is not None:
                    os.chdir(cwd)
                if stdin is not None:
                    os.dup2(os.open(stdin, os.O_RDONLY), 0)
                if stdout is not None:
                    os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
                os.execve(argv[0], argv, full_env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.shown = b""  # everything the terminal showed so far
        self._seen = 0  # how much of it expect() has consumed

    def _read(self, timeout: float) -> bytes | None:
        """What the terminal shows next: None if nothing within timeout,
        b"" once the command and its children have closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: nobody holds the terminal's other side
            data = b""
        self.shown += data
        return data

    def expect(self, pattern: str | bytes, timeout: float = 60) -> bytes:
        """Wait until the terminal shows pattern (a regular expression) after
        what was expected before; return what it showed up to its end."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.shown, self._seen)
            if found:
                seen, self._seen = self.shown[self._seen : found.end()], found.end()
                return seen
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.5)) == b"":
                raise AssertionError(
                    f"the terminal never showed {regex.pattern!r}; it showed:\n"
                    + self.shown[self._seen :].decode(errors="replace")
                )

    def send(self, data: str | bytes) -> None:
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def line(self, text: str) -> None:
        """Type text and Enter."""
        self.send(text + "\r")

    def wait(self, timeout: float = 120) -> int:
        """The exit code (negative: killed by that signal), after reading all
        the terminal showed."""
        deadline = time.monotonic() + timeout
        while self._read(max(0.0, deadline - time.monotonic())) != b"":
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self.fd)
                raise AssertionError("the command did not end; it showed:\n" + self.text)
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    @property
    def text(self) -> str:
        return self.shown.decode(errors="replace").replace("\r\n", "\n")
