"""atheris target: the age header parser.

Only HeaderError may escape, and whatever parses re-serialises to exactly
the bytes it was parsed from.
"""

import io
import sys

import atheris

with atheris.instrument_imports():
    from pouch.age import parse_header
    from pouch.errors import HeaderError


def test_one_input(data: bytes) -> None:
    src = io.BytesIO(data)
    try:
        header = parse_header(src)
    except HeaderError:
        return
    if header.marshal() != data[: src.tell()]:
        raise AssertionError("header did not round-trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
