"""The home (SPEC.md section 5): one principal's identity, register and
archive, and the Post that does its work.

- folder.py: the home folder: card, secret keys, register, archive;
- register.py, _store.py, _ledger_store.py: the SQLite register;
- ledger.py: the ledger's rules (SPEC.md 5.3);
- post.py: the workflows (send, receive, hand over, accept...), carried
  out in _sending.py, _receiving.py, carry.py and correspondence.py.

The names below are loaded when first used: a command imports only the
workflows it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attributes

if TYPE_CHECKING:
    from ._ledger_store import Direction, LetterRow, State
    from ._receiving import CheckedReceipt, Received
    from ._sending import Sent
    from .carry import (
        Accepted,
        CredentialState,
        CustodyLink,
        CustodyReport,
        Delivered,
        Guarded,
        HandedOver,
        check_custody,
        check_custody_receipt,
        credential_states,
        keep_statement,
    )
    from .correspondence import (
        Checked,
        Fork,
        Ledger,
        LetterView,
        Missing,
        Thread,
        check,
        restore,
    )
    from .folder import Home
    from .ledger import Arrival, ArrivalKind
    from .post import Post
    from .register import Contact, Register

__getattr__ = attributes(__name__, {
    "_ledger_store": ("Direction", "LetterRow", "State"),
    "_receiving": ("CheckedReceipt", "Received"),
    "_sending": ("Sent",),
    "carry": (
        "Accepted", "CredentialState", "CustodyLink", "CustodyReport", "Delivered", "Guarded",
        "HandedOver", "check_custody", "check_custody_receipt", "credential_states",
        "keep_statement",
    ),
    "correspondence": (
        "Checked", "Fork", "Ledger", "LetterView", "Missing", "Thread", "check", "restore",
    ),
    "folder": ("Home",),
    "ledger": ("Arrival", "ArrivalKind"),
    "post": ("Post",),
    "register": ("Contact", "Register"),
})  # fmt: skip

__all__ = [
    "Accepted",
    "Arrival",
    "ArrivalKind",
    "Checked",
    "CheckedReceipt",
    "Contact",
    "CredentialState",
    "CustodyLink",
    "CustodyReport",
    "Delivered",
    "Direction",
    "Fork",
    "Guarded",
    "HandedOver",
    "Home",
    "Ledger",
    "LetterRow",
    "LetterView",
    "Missing",
    "Post",
    "Received",
    "Register",
    "Sent",
    "State",
    "Thread",
    "check",
    "check_custody",
    "check_custody_receipt",
    "credential_states",
    "keep_statement",
    "restore",
]
