"""atheris target: the order block parser and the transcript reader (a tar
archive, its manifest, the letters in it). Only PouchError may escape."""

import io
import sys

import atheris

with atheris.instrument_imports():
    from pouch import transcript
    from pouch.errors import PouchError
    from pouch.identity import Identity
    from pouch.letter.order import Block

CARDS = [Identity.generate(name, rand=lambda n: bytes(n)).card() for name in ("A",)]
CARDS.append(Identity.generate("B", rand=lambda n: b"\x01" * n).card())


def test_one_input(data: bytes) -> None:
    try:
        Block.decode(data)
    except PouchError:
        pass
    try:
        transcript.verify(io.BytesIO(data), CARDS)
    except PouchError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
