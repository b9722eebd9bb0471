"""Seeds derived from names and numbers, the same in every process and Python run (unlike ``hash``)."""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, e.g. ``stable_seed("sample", seed, epoch, index)``."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
