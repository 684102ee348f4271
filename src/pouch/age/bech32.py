"""Bech32 (BIP 173) as age uses it: no length limit on the data part.

C2SP age spec, "Conventions": "Bech32 is as specified in BIP173, but without
length limits on the data part. [...] Bech32 strings can only be all
uppercase or all lowercase, but the checksum is always computed over the
lowercase string." Post-quantum recipients are about 1,960 characters long,
far past BIP 173's limit of 90.
"""

from __future__ import annotations

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# What the five bits shifted out of the checksum contribute: the XOR of the
# generators their set bits select, looked up instead of tested bit by bit
# (a post-quantum recipient has about 1,960 characters).
def _shifted_out_table() -> list[int]:
    table = [0] * 32
    for top in range(32):
        for i, g in enumerate(_GENERATOR):
            if (top >> i) & 1:
                table[top] ^= g
    return table


_SHIFTED_OUT = _shifted_out_table()


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ v) ^ _SHIFTED_OUT[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or (acc << (tobits - bits)) & maxv:
        raise ValueError("invalid padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode data under hrp, in lowercase."""
    hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    checksum = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    values += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values)


def decode(s: str) -> tuple[str, bytes]:
    """Decode s into its hrp (in the case s was written in) and data.

    Raises ValueError if s is not valid Bech32. The case is kept so that
    callers can insist on the canonical one, as age does: recipients in
    lower case, secret keys in upper case.
    """
    if s.lower() != s and s.upper() != s:
        raise ValueError("mixed case")
    upper = s.upper() == s and s.lower() != s
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise ValueError("separator '1' at invalid position")
    hrp = s[:pos]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("invalid character in human-readable part")
    try:
        values = [_VALUES[c] for c in s[pos + 1 :]]
    except KeyError:
        raise ValueError("invalid character in data part") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("invalid checksum")
    return (hrp.upper() if upper else hrp), _five_to_eight(s[pos + 1 : -6])


# The data part, read as one base-32 number (in C): the charset mapped onto
# the digits int() takes.
_TO_BASE32 = str.maketrans(_CHARSET, "0123456789abcdefghijklmnopqrstuv")


def _five_to_eight(data: str) -> bytes:
    """5-bit groups to bytes, as _convert_bits(..., 5, 8, pad=False): the
    bits left over must be fewer than 5, and zero."""
    if not data:
        return b""
    bits = 5 * len(data)
    left = bits % 8
    n = int(data.translate(_TO_BASE32), 32)
    if left >= 5 or n & ((1 << left) - 1):
        raise ValueError("invalid padding")
    return (n >> left).to_bytes(bits // 8, "big")
