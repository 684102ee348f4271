"""atheris target: the container parser and its trailer. Only PouchError
may escape."""

import io
import sys

import atheris

with atheris.instrument_imports():
    from pouch import container
    from pouch.errors import PouchError


def test_one_input(data: bytes) -> None:
    try:
        c = container.parse(io.BytesIO(data))
        c.envelope_id()
    except PouchError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
