"""What a container's trailer says of custody (SPEC.md section 4): its
records, parsed and each verified on its own.

A trailer holds credentials, handovers, acceptances and revocations, one
statement per record. A record that does not verify is a problem to report,
not a reason to stop reading: the rest may still tell the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..container import Container, Record
from ..errors import StatementError
from .chain import Acceptance, Handover
from .credentials import Credential, Revocation

# Trailer record types (SPEC.md 4).
RECORD_CREDENTIAL = 1
RECORD_HANDOVER = 2
RECORD_ACCEPTANCE = 3
RECORD_REVOCATION = 4


def record(statement: Credential | Handover | Acceptance | Revocation) -> Record:
    """The trailer record that carries statement."""
    if isinstance(statement, Credential):
        return Record(RECORD_CREDENTIAL, statement.encode())
    if isinstance(statement, Revocation):
        return Record(RECORD_REVOCATION, statement.encode())
    kind = RECORD_HANDOVER if isinstance(statement, Handover) else RECORD_ACCEPTANCE
    return Record(kind, statement.statement.encode())


@dataclass
class Trailer:
    """The statements found in a container's trailer."""

    records: list[Handover | Acceptance] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)
    revocations: list[Revocation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # records that do not verify

    @property
    def envelope(self) -> str | None:
        """The envelope id the first handover names (None: no handover)."""
        first = next((r for r in self.records if isinstance(r, Handover)), None)
        return first.envelope if first else None


def read_trailer(c: Container) -> Trailer:
    t = Trailer()
    for i, ref in enumerate(c.records, 1):
        body = c.read_record(ref).body
        try:
            if ref.type == RECORD_HANDOVER:
                t.records.append(Handover.from_bytes(body))
            elif ref.type == RECORD_ACCEPTANCE:
                t.records.append(Acceptance.from_bytes(body))
            elif ref.type == RECORD_CREDENTIAL:
                credential = Credential.from_bytes(body)
                t.credentials[credential.id] = credential
            elif ref.type == RECORD_REVOCATION:
                t.revocations.append(Revocation.from_bytes(body))
        except StatementError as e:
            t.problems.append(f"trailer record {i} does not verify: {e.message}")
    return t
