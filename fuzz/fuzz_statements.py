"""atheris target: the statement parsers (cards, credentials, scope
openings, revocations, handovers, acceptances). Only PouchError may
escape. The trailer's framing is fuzz_container's."""

import sys

import atheris

with atheris.instrument_imports():
    from pouch.custody import Acceptance, Credential, Handover, Revocation, Scope
    from pouch.errors import PouchError
    from pouch.identity import Card

PARSERS = (
    Card.from_bytes,
    Credential.from_bytes,
    Revocation.from_bytes,
    Scope.from_bytes,
    Handover.from_bytes,
    Acceptance.from_bytes,
)


def test_one_input(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except PouchError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
