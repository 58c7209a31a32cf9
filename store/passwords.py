"""How the store keeps a password: scrypt (memory-hard, in the standard library), never clear.

Like a key's digest (store/digest.py), the form a secret takes at rest is the store's to
decide: store/users.py hashes at signup and verifies at login, and imports nothing above it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_R, _P, _LEN = 8, 1, 32
# A fixed hash to verify against when the email is unknown, so both cases cost the same.
_DUMMY_SALT = b"genmb-dummy-salt"


def _scrypt(password: str, salt: bytes, n: int) -> bytes:
    # surrogatepass: any str has bytes to hash (a lone surrogate, refused at signup, can still
    # be typed at login, and must cost the same scrypt as any wrong password).
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=_R,
        p=_P,
        dklen=_LEN,
        maxmem=256 * 1024 * 1024,
    )


def hash_password(password: str, n: int) -> str:
    """Hash a password as scrypt$n$salt$hash (base64), with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n)
    b64 = base64.b64encode
    return f"scrypt${n}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None, n: int) -> bool:
    """Check a password in constant time; with no stored hash, burn the same time and fail."""
    try:
        if not stored:
            _scrypt(password, _DUMMY_SALT, n)
            return False
        scheme, n_text, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        actual = _scrypt(password, salt, int(n_text))
    except ValueError:  # a corrupt record fails the check; it must not become a 500
        return False
    return hmac.compare_digest(actual, expected)
