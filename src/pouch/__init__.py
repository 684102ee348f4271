"""pouch: sealed letters, carried by hand.

Letters whose authorship, integrity, custody and delivery are provable,
carried on a USB stick, on paper, through a relay, or by any channel nobody
trusts. The packages, from the bottom (one per section of SPEC.md):
pouch.age (the age v1 engine), pouch.letter (the signed letter),
pouch.statements and pouch.identity (signed statements, cards),
pouch.custody (credentials, handovers, verdicts), pouch.container (what a
courier carries), pouch.home (the home, its register, and the Post that
sends and receives), pouch.transcript, pouch.paper, and the CLI.

The public API is a few verbs and types, loaded when first used, so that
importing pouch costs nothing:

    Post, Home                       pouch.home: the workflows, the home
    seal, open_letter, inspect       pouch.letter: the letter alone
    Identity, Card                   pouch.identity
    PouchError and its subclasses    pouch.errors
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .home import Home, Post
    from .identity import Card, Identity
    from .letter import inspect, open_letter, seal

__all__ = ["Card", "Home", "Identity", "Post", "inspect", "open_letter", "seal"]

_LAZY = {
    "seal": "letter",
    "open_letter": "letter",
    "inspect": "letter",
    "Home": "home",
    "Post": "home",
    "Identity": "identity",
    "Card": "identity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pouch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
