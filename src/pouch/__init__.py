"""pouch: sealed letters, carried by hand.

Letters whose authorship, integrity, custody and delivery are provable,
carried on a USB stick, on paper, through a relay, or by any channel nobody
trusts. The layers, from the bottom: pouch.age (the age v1 engine), the
signed letter (pouch.letter) in its container (pouch.container), the
statements (pouch.statements), the home and register, the CLI.

The public API is a few verbs and types, loaded when first used, so that
importing pouch costs nothing:

    seal, open_letter, inspect       pouch.letters
    Home                             pouch.home
    Identity, Card                   pouch.identity
    PouchError and its subclasses    pouch.errors
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .home import Home
    from .identity import Card, Identity
    from .letters import inspect, open_letter, seal

__all__ = ["Card", "Home", "Identity", "inspect", "open_letter", "seal"]

_LAZY = {
    "seal": "letters",
    "open_letter": "letters",
    "inspect": "letters",
    "Home": "home",
    "Identity": "identity",
    "Card": "identity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pouch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
