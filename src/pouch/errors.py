"""The one exception hierarchy of pouch.

Every failure a person can cause or meet (bad input, a damaged file, a wrong
key, a refused operation) is a :class:`PouchError` subclass carrying a message
that names the problem, optional hints that say what to do, and the exit code
the CLI returns for it. The CLI catches :class:`PouchError` once, at the top,
and prints ``error:`` and ``hint:`` lines; anything else escaping is a bug.

Authentication failures deliberately say little: "the file was altered", not
which byte or which check, so that no oracle is offered to whoever altered it.

The exit codes are part of the interface and are listed in README.md.
"""

from __future__ import annotations

__all__ = [
    "ArmorError",
    "ContainerError",
    "CustodyError",
    "DecryptionError",
    "FileError",
    "HeaderError",
    "HeaderMacError",
    "KeyFormatError",
    "LetterError",
    "NameTakenError",
    "NoIdentityMatchError",
    "NotAddressedError",
    "PaperError",
    "PayloadError",
    "PouchError",
    "RefusedError",
    "StatementError",
    "UsageError",
    "VerificationError",
]


class PouchError(Exception):
    """Base of every error pouch raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *hints: str) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints

    def diagnostics(self) -> str:
        """The text shown to a person: the error, then one line per hint."""
        lines = [f"error: {self.message}"]
        lines.extend(f"hint: {h}" for h in self.hints)
        return "\n".join(lines)


class UsageError(PouchError):
    """The request itself is inconsistent (flags that exclude each other...)."""

    exit_code = 2


class KeyFormatError(PouchError):
    """A recipient, identity or key file could not be parsed."""

    exit_code = 3


class DecryptionError(PouchError):
    """Base of the errors met while opening an age file."""


class NoIdentityMatchError(DecryptionError):
    """None of the identities given can unwrap the file key."""

    exit_code = 4


class HeaderError(DecryptionError):
    """The age header is malformed, or is not an age header at all."""

    exit_code = 5


class HeaderMacError(DecryptionError):
    """The header was altered after it was written (its MAC does not match)."""

    exit_code = 6


class PayloadError(DecryptionError):
    """The payload is damaged, truncated, or has data after its end."""

    exit_code = 7


class ArmorError(DecryptionError):
    """The ASCII armor around an age file is malformed."""

    exit_code = 8


class FileError(PouchError):
    """A file could not be read or written. errno, when known, is the
    system's reason: whoever owns the file being written names it for a
    full or read-only file system (_io.writing)."""

    exit_code = 9

    def __init__(self, message: str, *hints: str, errno: int | None = None) -> None:
        super().__init__(message, *hints)
        self.errno = errno


class RefusedError(PouchError):
    """pouch refuses to do something unsafe (a readable secret key file...)."""

    exit_code = 10


class NameTakenError(RefusedError):
    """A contact's name is already another key's: one name, one key."""

    def __init__(
        self, name: str, taken_by: str, fingerprint: str, keep_both: str = "another name"
    ) -> None:
        super().__init__(
            f"you already have a contact called {name!r}, with ANOTHER KEY",
            f"{name!r} you know: {taken_by[:16]}; this card: {fingerprint[:16]}",
            "either someone else took the name, or they have a new key: ask them in person "
            "(compare safety numbers) before you trust it",
            f"to keep both, add this card under {keep_both}",
        )
        self.name, self.taken_by, self.fingerprint = name, taken_by, fingerprint


class VerificationError(PouchError):
    """A signature or a binding does not verify: do not trust the content."""

    exit_code = 11


class StatementError(VerificationError):
    """A signed statement (card, credential...) is malformed or not signed
    exactly as it requires."""


class LetterError(VerificationError):
    """The letter inside the envelope is malformed or its signatures fail."""


class NotAddressedError(PouchError):
    """The letter does not name this identity among its recipients: it was
    forwarded (re-encrypted to someone it was not written to)."""

    exit_code = 12


class ContainerError(PouchError):
    """Not a pouch container, or a damaged one."""

    exit_code = 5


class CustodyError(PouchError):
    """The custody chain does not hold: broken, forked, or a holder who was
    not accredited (pouch custody; pouch open --require-accredited)."""

    exit_code = 13


class ForkError(PouchError):
    """Two different letters at one place of a sender's stream: one of them
    was forged, or the sender's state was cloned. Both are kept as evidence
    (pouch open)."""

    exit_code = 14


class BehindError(PouchError):
    """A correspondent acknowledges letters this register does not know it
    sent: it lost state (restored from an old backup). Sealing now would
    reuse sequence numbers (pouch seal)."""

    exit_code = 15


class PaperError(PouchError):
    """Paper codes could not give the pouch back: no codes, too few, codes
    of several letters mixed, altered codes, or an image or PDF that could
    not be read (pouch print, pouch scan)."""

    exit_code = 16
