"""atheris target: the letter reader (header, segments, manifest) on any
plaintext. Only PouchError may escape."""

import io
import sys

import atheris

with atheris.instrument_imports():
    from pouch.errors import PouchError
    from pouch.letter._segments import LetterReader


def test_one_input(data: bytes) -> None:
    try:
        reader = LetterReader(io.BytesIO(data))
        for _ in reader.data():
            pass
    except PouchError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
