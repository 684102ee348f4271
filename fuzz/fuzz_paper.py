"""atheris target: the paper codes (a stream of uint16-length-prefixed code
payloads, sorted and reassembled as pouch scan does) and the parser of the
scan worker's answer. Only PaperError may escape the first; the second
refuses with ValueError."""

import sys

import atheris

with atheris.instrument_imports():
    from pouch.errors import PaperError
    from pouch.paper import codes, reader


def _codes(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos : pos + 2], "big")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def test_one_input(data: bytes) -> None:
    collection = codes.Collection()
    collection.extend(_codes(data))
    for letter in collection.letters.values():
        try:
            codes.reassemble(letter)
        except PaperError:
            pass
    try:
        reader._parse_output(data, reader.Source("fuzz"))
    except ValueError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
