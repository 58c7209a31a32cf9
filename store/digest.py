"""What Redis may hold of a secret: the SHA-256 digest of a key or session token, never it.

A key's shape is checked before it is hashed (junk is never looked up), and its display
prefix is the only part of it kept in clear.
"""

from __future__ import annotations

import hashlib
import re

KEY_PREFIX = "genmb_sk_"
RANDOM_LENGTH = 32
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[A-Za-z0-9_-]{{{RANDOM_LENGTH}}}$")
# Characters of the random part a display prefix shows (genmb_sk_Ab3d).
SHOWN_CHARACTERS = 4


def digest(secret: str) -> str:
    """The SHA-256 hex digest that names a key or a session in Redis."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_well_formed(raw_key: str) -> bool:
    """Whether a presented key has the shape of one of ours (checked before any lookup)."""
    return KEY_PATTERN.fullmatch(raw_key) is not None


def display_prefix(raw_key: str) -> str:
    """The part of a key that may be stored, logged and shown: the prefix and 4 characters."""
    return raw_key[: len(KEY_PREFIX) + SHOWN_CHARACTERS]
