"""security/passwords.py: scrypt hashes, verified with the cost they were made with; a missing
or garbled hash never verifies."""

from __future__ import annotations

import pytest

from store.passwords import hash_password, verify_password
from tests.helpers import FAST_HASH, PASSWORD


def test_password_hash_and_verify():
    """A hash verifies its own password and nothing else; salts make hashes unique."""
    first = hash_password("hunter2-and-more", FAST_HASH)
    assert first.startswith("scrypt$")
    assert "hunter2-and-more" not in first
    assert verify_password("hunter2-and-more", first, FAST_HASH)
    assert not verify_password("hunter2-and-mord", first, FAST_HASH)
    assert not verify_password("", first, FAST_HASH)
    assert hash_password("hunter2-and-more", FAST_HASH) != first


def test_password_verify_uses_cost_from_stored_hash():
    """Raising the configured scrypt cost does not lock out users hashed at the old cost."""
    stored = hash_password("old-password", FAST_HASH)
    assert verify_password("old-password", stored, FAST_HASH * 2)


@pytest.mark.parametrize("stored", [None, ""])
def test_password_verify_without_hash_fails(stored):
    """No stored hash (unknown user) never verifies."""
    assert verify_password(PASSWORD, stored, FAST_HASH) is False


@pytest.mark.parametrize(
    "stored",
    [
        "garbage",
        "scrypt$1024$AAAA",
        "scrypt$1024$AAAA$AAAA$AAAA",
        "bcrypt$1024$AAAA$AAAA",
        "scrypt$1024$!!notbase64$AAAA",
        "$$$",
    ],
)
def test_password_verify_garbage_hash_fails(stored):
    """A corrupt stored hash is a failed check, not a crash."""
    assert verify_password(PASSWORD, stored, FAST_HASH) is False


@pytest.mark.parametrize("stored", ["scrypt$abc$AAAA$AAAA", "scrypt$3$AAAA$AAAA"])
def test_password_verify_garbage_cost_fails(stored):
    """A corrupt cost field in a stored hash is a failed check, not a crash."""
    assert verify_password(PASSWORD, stored, FAST_HASH) is False
