"""Custody: who carried a pouch, and who was allowed to (SPEC.md sections 3.4
to 3.10, and the trailer of section 4).

- credentials.py: principals accredit envoys (who carry) and receivers (who
  accept), for a period and perhaps a scope; and revoke them;
- chain.py: handovers, countersigned by acceptances, chained by hash;
- trailer.py: the statements a container carries in its trailer;
- verdicts.py: the chain judged against what a verifier knows (a guard,
  the recipient, the sender reading a custody receipt);
- possession.py: a live challenge that the presenter holds the pouch.
"""

from __future__ import annotations

from .chain import Acceptance, Chain, Handover, Link, accept, build_chain, hand_over
from .credentials import (
    DEFAULT_DAYS,
    Credential,
    Revocation,
    Role,
    Scope,
    accredit,
    revoke,
    statement_id,
)
from .possession import answer, challenge_of, check_answer, new_challenge, new_spoken_challenge
from .trailer import (
    RECORD_ACCEPTANCE,
    RECORD_CREDENTIAL,
    RECORD_HANDOVER,
    RECORD_REVOCATION,
    Trailer,
    read_trailer,
    record,
)
from .verdicts import Accreditation, Verdict, delivery, judge, recipient_flags

__all__ = [
    "DEFAULT_DAYS",
    "RECORD_ACCEPTANCE",
    "RECORD_CREDENTIAL",
    "RECORD_HANDOVER",
    "RECORD_REVOCATION",
    "Acceptance",
    "Accreditation",
    "Chain",
    "Credential",
    "Handover",
    "Link",
    "Revocation",
    "Role",
    "Scope",
    "Trailer",
    "Verdict",
    "accept",
    "accredit",
    "answer",
    "build_chain",
    "challenge_of",
    "check_answer",
    "delivery",
    "hand_over",
    "judge",
    "new_challenge",
    "new_spoken_challenge",
    "read_trailer",
    "recipient_flags",
    "record",
    "revoke",
    "statement_id",
]
