"""age v1 file encryption, on pyca/cryptography (https://c2sp.org/age,
v1.1.0; SPEC.md section 1). This package is closed: what is named here is
all the rest of pouch uses.

The verbs:

- :func:`encrypt` / :func:`decrypt` stream between file objects in constant
  memory, armor included;
- :func:`encrypt_file` / :func:`decrypt_file` work between paths (None means
  stdin or stdout), write their output atomically, and seal or open the
  payload on every core when both ends are regular files;
- :class:`Encryptor` and :class:`Decryptor` split both directions in two
  phases: the header and payload nonce first, then the payload. A signed
  letter binds itself to both before its first byte is written. For a
  caller that works on several cores, ``Encryptor.start`` gives a
  :class:`PayloadSealer` (chunks sealed out of order) and
  ``Decryptor.random_access`` a :class:`PayloadReader` (any offset of the
  plaintext, each chunk authenticated first);
- :func:`parse_header` reads a header without any key (what a carrier sees).

Keys are :class:`X25519Recipient`/:class:`X25519Identity` (``age1…``),
:class:`HybridRecipient`/:class:`HybridIdentity` (post-quantum, ``age1pq1…``)
and :class:`ScryptRecipient`/:class:`ScryptIdentity` (a passphrase); parse
them with :func:`parse_recipient` and :func:`parse_identity`; key files are
read and written by :mod:`pouch.age.keys`, armor by :mod:`pouch.age.armor`.

Decryption never releases plaintext that has not been authenticated: the
streaming reader hands out a chunk only after its tag verified, and file
output is renamed into place only after the final chunk verified.
"""

from __future__ import annotations

from ._chunks import ChunkRun, PayloadReader, PayloadSealer
from ._core import (
    Decryptor,
    DisclosedKey,
    Encryptor,
    Identity,
    Rand,
    Recipient,
    dearmor,
    decrypt,
    encrypt,
)
from ._files import decrypt_file, encrypt_file
from ._format import Header, Stanza, parse_header
from ._stream import CHUNK_SIZE, ENC_CHUNK_SIZE, NONCE_SIZE, EncryptingWriter
from .keys import parse_identity, parse_recipient
from .pq import HybridIdentity, HybridRecipient
from .scrypt import ScryptIdentity, ScryptRecipient
from .x25519 import X25519Identity, X25519Recipient

__all__ = [
    "CHUNK_SIZE",
    "ENC_CHUNK_SIZE",
    "NONCE_SIZE",
    "ChunkRun",
    "Decryptor",
    "DisclosedKey",
    "EncryptingWriter",
    "Encryptor",
    "Header",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "PayloadReader",
    "PayloadSealer",
    "Rand",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "dearmor",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "parse_header",
    "parse_identity",
    "parse_recipient",
]
