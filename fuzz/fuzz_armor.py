"""atheris target: the armor decoder.

Only ArmorError may escape, and what decodes re-armors to the same text up
to CRLF line ends and whitespace around the block.
"""

import io
import sys

import atheris

with atheris.instrument_imports():
    from pouch.age.armor import ArmoredReader, armor
    from pouch.errors import ArmorError

_WS = b" \t\n\r\x0b\x0c"


def test_one_input(data: bytes) -> None:
    try:
        out = io.BufferedReader(ArmoredReader(io.BytesIO(data))).read()
    except ArmorError:
        return
    if armor(out) != data.replace(b"\r\n", b"\n").strip(_WS) + b"\n":
        raise AssertionError("armor decoded a non-canonical text")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
