"""The scrypt passphrase recipient type (C2SP age spec, "The scrypt recipient type").

-> scrypt <base64 salt> <log2 work factor>
<base64 wrapped file key>

wrap key = scrypt(N = 2^logN, r = 8, p = 1, dkLen = 32,
                  S = "age-encryption.org/v1/scrypt" || salt, P = passphrase)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import HeaderError
from ._crypto import WRAPPED_KEY_SIZE, unwrap_file_key, wrap_file_key
from ._format import Stanza, b64decode_exact, b64encode

STANZA_TYPE = "scrypt"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SALT_SIZE = 16

# What age encrypts with: about a second here.
DEFAULT_WORK_FACTOR = 18
# "The identity implementation SHOULD apply an upper limit to the work
# factor": 2^22 costs 4 GiB and several seconds; anything above is an attack
# on the reader's machine more than a passphrase.
MAX_WORK_FACTOR = 22

# "a decimal number composed of only digits with no leading zeroes"
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


def _derive(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


def _encode(passphrase: str | bytes) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


class ScryptRecipient:
    """Encrypts to a passphrase. It must be the file's only recipient."""

    def __init__(self, passphrase: str | bytes, work_factor: int = DEFAULT_WORK_FACTOR) -> None:
        if not 1 <= work_factor <= MAX_WORK_FACTOR:
            raise ValueError(f"scrypt work factor must be between 1 and {MAX_WORK_FACTOR}")
        self._passphrase = _encode(passphrase)
        self._work_factor = work_factor
        # A label no other recipient has: age's way of making sure a
        # passphrase is never mixed with other recipients.
        self.labels = frozenset({"scrypt:" + os.urandom(16).hex()})

    def wrap(self, file_key: bytes, rand: Callable[[int], bytes] = os.urandom) -> list[Stanza]:
        salt = rand(SALT_SIZE)
        key = _derive(self._passphrase, salt, self._work_factor)
        args = (b64encode(salt), str(self._work_factor))
        return [Stanza(STANZA_TYPE, args, wrap_file_key(key, file_key))]

    def __repr__(self) -> str:
        return f"ScryptRecipient(work_factor={self._work_factor})"


class ScryptIdentity:
    """Decrypts files encrypted to a passphrase.

    passphrase may be a callable, asked only when a file does have a scrypt
    stanza (so that a prompt never appears for a file encrypted to keys).
    """

    def __init__(
        self,
        passphrase: str | bytes | Callable[[], str | bytes],
        max_work_factor: int = MAX_WORK_FACTOR,
    ) -> None:
        self._ask = passphrase if callable(passphrase) else None
        self._passphrase = b"" if callable(passphrase) else _encode(passphrase)
        self._max_work_factor = max_work_factor

    def _secret(self) -> bytes:
        if self._ask is not None:
            self._passphrase = _encode(self._ask())
            self._ask = None
        return self._passphrase

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for s in stanzas:
            if s.type != STANZA_TYPE:
                continue
            if len(stanzas) != 1:
                raise HeaderError("malformed header: a scrypt stanza must be the only stanza")
            if len(s.args) != 2:
                raise HeaderError("malformed scrypt stanza: wrong number of arguments")
            salt = b64decode_exact(s.args[0], SALT_SIZE)
            if salt is None:
                raise HeaderError("malformed scrypt stanza: invalid salt")
            if not _WORK_FACTOR.fullmatch(s.args[1]):
                raise HeaderError("malformed scrypt stanza: invalid work factor")
            # Compare as text first: a hostile header may carry a huge number.
            if len(s.args[1]) > 2 or int(s.args[1]) > self._max_work_factor:
                raise HeaderError(
                    f"scrypt work factor {s.args[1][:20]} is too large "
                    f"(at most {self._max_work_factor} is accepted)",
                    "the file was made with unusual settings, or to exhaust this machine",
                )
            if len(s.body) != WRAPPED_KEY_SIZE:
                raise HeaderError("malformed scrypt stanza: invalid body length")
            key = _derive(self._secret(), salt, int(s.args[1]))
            file_key = unwrap_file_key(key, s.body)
            if file_key is not None:
                return file_key
        return None

    def __repr__(self) -> str:
        return "ScryptIdentity()"
