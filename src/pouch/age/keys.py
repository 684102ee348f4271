"""Recipient and identity strings, and the files that hold them.

A recipients file (-R) and an identity file (-i) are text: one key per line,
blank lines and lines starting with "#" ignored, as age reads them. An
identity file may itself be an age file encrypted with a passphrase (age
reads those too); it is opened with the passphrase callback.

Secret key files are read only when neither group nor others can read them
(SPEC.md 1.2), and error messages never quote a line of one.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from datetime import datetime
from typing import TypeAlias

from .._io import read_small
from ..errors import FileError, KeyFormatError, RefusedError
from . import bech32, pq, x25519
from .pq import HybridIdentity, HybridRecipient
from .x25519 import X25519Identity, X25519Recipient

AnyRecipient: TypeAlias = X25519Recipient | HybridRecipient
AnyIdentity: TypeAlias = X25519Identity | HybridIdentity

# As age: 16 MiB per file, 8 KiB per line (a post-quantum key is about 2 KB).
FILE_SIZE_LIMIT = 16 << 20
LINE_LENGTH_LIMIT = 8 << 10


def parse_recipient(s: str) -> AnyRecipient:
    """Parse an ``age1…`` or ``age1pq1…`` recipient."""
    if s.startswith(("ssh-", "github:")):
        raise KeyFormatError(
            f"unsupported recipient {s[:24]!r}", "pouch takes age1… and age1pq1… recipients"
        )
    if s.startswith("AGE-"):
        raise KeyFormatError(
            "that is a secret key, not a recipient",
            "give the public key: 'pouch age-keygen -y FILE' prints it",
        )
    try:
        hrp, data = bech32.decode(s)
    except ValueError as e:
        raise KeyFormatError(f"malformed recipient {s[:64]!r}: {e}") from None
    if hrp == x25519.RECIPIENT_HRP:
        return X25519Recipient(data)
    if hrp == pq.RECIPIENT_HRP:
        return HybridRecipient(data)
    if hrp.lower() in (x25519.RECIPIENT_HRP, pq.RECIPIENT_HRP):
        raise KeyFormatError(f"malformed recipient {s[:64]!r}: recipients are lower case")
    raise KeyFormatError(
        f"unknown recipient type {hrp!r}", "age plugins are not supported by pouch"
    )


def parse_identity(s: str) -> AnyIdentity:
    """Parse an ``AGE-SECRET-KEY-1…`` or ``AGE-SECRET-KEY-PQ-1…`` identity."""
    try:
        hrp, data = bech32.decode(s)
    except ValueError as e:
        raise KeyFormatError(f"malformed secret key: {e}") from None
    if hrp == x25519.IDENTITY_HRP:
        return X25519Identity(data)
    if hrp == pq.IDENTITY_HRP:
        return HybridIdentity(data)
    if hrp.upper() in (x25519.IDENTITY_HRP, pq.IDENTITY_HRP):
        raise KeyFormatError("malformed secret key: secret keys are upper case")
    if hrp.upper().startswith("AGE-PLUGIN-"):
        raise KeyFormatError("age plugin identities are not supported by pouch")
    raise KeyFormatError(f"unknown secret key type {hrp.upper()!r}")


def _lines(text: str, source: str) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if len(line) > LINE_LENGTH_LIMIT:
            raise KeyFormatError(f"{source}: line {n} is too long")
        out.append((n, line))
    return out


def parse_recipients(text: str, source: str = "recipients file") -> list[AnyRecipient]:
    recipients = []
    for n, line in _lines(text, source):
        try:
            recipients.append(parse_recipient(line))
        except KeyFormatError as e:
            raise KeyFormatError(f"{source}: line {n}: {e.message}", *e.hints) from None
    if not recipients:
        raise KeyFormatError(f"{source}: no recipients found")
    return recipients


def parse_identities(text: str, source: str = "identity file") -> list[AnyIdentity]:
    identities = []
    for n, line in _lines(text, source):
        try:
            identities.append(parse_identity(line))
        except KeyFormatError:
            # The line may be a secret key with a typo: never echo it.
            raise KeyFormatError(f"{source}: line {n} is not a valid secret key") from None
    if not identities:
        raise KeyFormatError(f"{source}: no secret keys found")
    return identities


def _read_limited(path: str | os.PathLike[str]) -> bytes:
    return read_small(path, FILE_SIZE_LIMIT, "a key file", KeyFormatError)


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(f"{source}: not a text file") from None


def read_recipients_file(path: str | os.PathLike[str]) -> list[AnyRecipient]:
    return parse_recipients(_text(_read_limited(path), str(path)), str(path))


def check_private(path: str | os.PathLike[str], holds: str = "secret keys") -> None:
    """Refuse a file of secrets (holds says which) that group or others can
    read: whoever else read it already has them."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise FileError(f"cannot read {path}: {e.strerror}") from None
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
        raise RefusedError(
            f"{path} holds {holds} but others can read it (mode {stat.S_IMODE(st.st_mode):04o})",
            f"make it private first: chmod 600 {path}",
        )


def read_identities_file(
    path: str | os.PathLike[str], passphrase: Callable[[str], str | bytes] | None = None
) -> list[AnyIdentity]:
    """Read an identity file, decrypting it first if it is passphrase-encrypted.

    passphrase(prompt) is called only for an encrypted file.
    """
    check_private(path)
    data = _read_limited(path)
    if data.startswith((b"age-encryption.org/", b"-----BEGIN AGE")):
        if passphrase is None:
            raise KeyFormatError(f"{path} is encrypted and no passphrase can be asked for")
        from ._core import decrypt
        from .scrypt import ScryptIdentity

        plain = io.BytesIO()
        secret = passphrase(f"Enter passphrase for identity file {path}")
        decrypt(io.BytesIO(data), plain, [ScryptIdentity(secret)])
        data = plain.getvalue()
    return parse_identities(_text(data, str(path)), str(path))


def identity_file_text(identity: AnyIdentity, now: datetime) -> str:
    """An identity file as age-keygen writes it."""
    return (
        f"# created: {now.isoformat(timespec='seconds')}\n"
        f"# public key: {identity.recipient}\n"
        f"{identity}\n"
    )


def write_identity_file(path: str | os.PathLike[str], text: str) -> None:
    """Create path (never overwriting) with mode 0600 and text in it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RefusedError(
            f"{path} already exists", "pouch never overwrites a key file; pick another name"
        ) from None
    except OSError as e:
        raise FileError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except OSError as e:
        os.unlink(path)
        raise FileError(f"cannot write {path}: {e.strerror}") from None
