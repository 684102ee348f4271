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

from typing import TYPE_CHECKING

from ._lazy import attributes

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .home import Home, Post
    from .identity import Card, Identity
    from .letter import inspect, open_letter, seal

__all__ = ["Card", "Home", "Identity", "Post", "inspect", "open_letter", "seal"]

__getattr__ = attributes(
    __name__,
    {
        "letter": ("seal", "open_letter", "inspect"),
        "home": ("Home", "Post"),
        "identity": ("Identity", "Card"),
    },
)
