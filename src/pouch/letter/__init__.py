"""The signed letter (SPEC.md section 2): the plaintext inside the age
envelope, signed segment by segment, with its order blocks (2.7) and
delivery receipts (2.6).

The verbs: :func:`seal` writes a letter into a container; :func:`open_letter`
opens and verifies one, releasing its parts to the caller's sinks;
:func:`verify_disclosed` verifies one with a disclosed file key, as a third
party does; :func:`inspect` shows what a carrier sees. The wire format is
private (_format.py, _segments.py); what is named here is the public API,
loaded when first used (opening a letter does not load sealing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attributes

if TYPE_CHECKING:
    from ._format import CLASSIC, PQ, Kem, LetterHeader, LetterKind, Manifest, Part, padme
    from ._open import (
        Inspection,
        Opened,
        PartSink,
        disclose,
        inspect,
        open_letter,
        sanitize_name,
        verify_disclosed,
    )
    from ._seal import KemChoice, Sealed, choose_kem, decoy_count, new_stream_id, seal

__getattr__ = attributes(__name__, {
    "_format": ("CLASSIC", "PQ", "Kem", "LetterHeader", "LetterKind", "Manifest", "Part", "padme"),
    "_open": (
        "Inspection", "Opened", "PartSink", "disclose", "inspect", "open_letter",
        "sanitize_name", "verify_disclosed",
    ),
    "_seal": ("KemChoice", "Sealed", "choose_kem", "decoy_count", "new_stream_id", "seal"),
})  # fmt: skip

__all__ = [
    "CLASSIC",
    "PQ",
    "Inspection",
    "Kem",
    "KemChoice",
    "LetterHeader",
    "LetterKind",
    "Manifest",
    "Opened",
    "Part",
    "PartSink",
    "Sealed",
    "choose_kem",
    "decoy_count",
    "disclose",
    "inspect",
    "new_stream_id",
    "open_letter",
    "padme",
    "sanitize_name",
    "seal",
    "verify_disclosed",
]
