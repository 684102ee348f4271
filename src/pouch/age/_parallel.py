"""STREAM on every core, for seekable files.

age seals its payload on one core. The chunks are independent (each has its
own counter nonce), so the chunk range is cut into one contiguous share per
worker, and every worker reads and writes its own byte ranges with os.pread
and os.pwrite. Workers are processes, not threads: pyca's AEAD holds the GIL.
They are forked (pouch._cores), so they inherit the payload key and the open
files without anything being pickled, and write straight into the output:
plaintext never goes through a scratch file or a pipe.

Only seekable regular files come here; pipes, terminals and armor use the
sequential reader and writer in _stream.py.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._cores import pread_into, pwrite
from ..errors import FileError, PayloadError
from ._stream import (
    BATCH,
    CHUNK_SIZE,
    ENC_CHUNK_SIZE,
    TAG_SIZE,
    chunk_count,
    chunk_nonce,
    open_chunk,
)


def seal_range(
    aead: ChaCha20Poly1305,
    src_fd: int,
    src_offset: int,
    size: int,
    dst_fd: int,
    dst_offset: int,
    first: int,
    end: int,
) -> None:
    """Seal chunks [first, end) of a size-byte plaintext at src_offset."""
    n_chunks = chunk_count(size)
    inbuf = memoryview(bytearray(BATCH * CHUNK_SIZE))
    view = memoryview(bytearray(BATCH * ENC_CHUNK_SIZE))
    for start in range(first, end, BATCH):
        stop = min(start + BATCH, end)
        want = min(stop * CHUNK_SIZE, size) - start * CHUNK_SIZE
        data = inbuf[:want]
        if pread_into(src_fd, data, src_offset + start * CHUNK_SIZE) != want:
            raise FileError("the input file shrank while it was being encrypted")
        pos = 0
        for i in range(start, stop):
            piece = data[(i - start) * CHUNK_SIZE : (i - start + 1) * CHUNK_SIZE]
            enc = view[pos : pos + len(piece) + TAG_SIZE]
            aead.encrypt_into(chunk_nonce(i, i == n_chunks - 1), piece, None, enc)
            pos += len(enc)
        pwrite(dst_fd, view[:pos], dst_offset + start * ENC_CHUNK_SIZE)
    if end == n_chunks and os.pread(src_fd, 1, src_offset + size):
        raise FileError("the input file grew while it was being encrypted")


def open_range(
    aead: ChaCha20Poly1305,
    src_fd: int,
    src_offset: int,
    size: int,
    dst_fd: int,
    first: int,
    end: int,
) -> None:
    """Open chunks [first, end) of a size-byte payload at src_offset."""
    n_chunks = -(-size // ENC_CHUNK_SIZE)
    inbuf = memoryview(bytearray(BATCH * ENC_CHUNK_SIZE))
    view = memoryview(bytearray(BATCH * CHUNK_SIZE))
    for start in range(first, end, BATCH):
        stop = min(start + BATCH, end)
        want = min(stop * ENC_CHUNK_SIZE, size) - start * ENC_CHUNK_SIZE
        data = inbuf[:want]
        if pread_into(src_fd, data, src_offset + start * ENC_CHUNK_SIZE) != want:
            raise FileError("the input file shrank while it was being decrypted")
        pos = 0
        for i in range(start, stop):
            enc = data[(i - start) * ENC_CHUNK_SIZE : (i - start + 1) * ENC_CHUNK_SIZE]
            last = i == n_chunks - 1
            plain_len = len(enc) - TAG_SIZE
            try:
                if last and (plain_len < 0 or (plain_len == 0 and i > 0)):
                    raise InvalidTag  # open_chunk names these cases
                aead.decrypt_into(chunk_nonce(i, last), enc, None, view[pos : pos + plain_len])
            except InvalidTag:
                # Slow path, for the message: open_chunk raises for a chunk
                # that does not authenticate, and reports one that does only
                # with the other final flag (truncation, trailing data).
                _, error = open_chunk(aead, i, bytes(enc), last)
                raise error or PayloadError(f"chunk {i} does not authenticate") from None
            pos += plain_len
        pwrite(dst_fd, view[:pos], start * CHUNK_SIZE)
