"""pouch: sealed letters, carried by hand.

Letters whose authorship, integrity, custody and delivery are provable,
carried on a USB stick, on paper, through a relay, or by any channel nobody
trusts. The layers, from the bottom: pouch.age (the age v1 engine), then
signed letters, statements, the container, the register and transports.

Importing pouch imports nothing heavy: each command loads what it needs.
"""

__version__ = "0.1.0"
