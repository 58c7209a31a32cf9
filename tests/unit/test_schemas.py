"""schemas/keys.py: a key's name trimmed, bounded, and refused when blank, with control
characters or bidirectional overrides."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from schemas.keys import KeyCreateSchema


def load_name(name):
    """KeyCreateSchema().load on a name."""
    return KeyCreateSchema().load({"name": name})["name"]


def test_key_name_is_trimmed():
    """Surrounding whitespace is removed from a key name."""
    assert load_name("  my key \t") == "my key"


def test_key_name_length_counts_after_trimming():
    """1..64 characters after trimming: padding does not push a 64-char name over."""
    assert load_name("  " + "a" * 64 + "  ") == "a" * 64
    assert load_name("a") == "a"
    with pytest.raises(ValidationError) as info:
        load_name("a" * 65)
    assert "name" in info.value.messages


@pytest.mark.parametrize("blank", ["", " ", "   \t  ", "\u3000"])
def test_blank_key_name_rejected(blank):
    """A name that is empty after trimming is rejected."""
    with pytest.raises(ValidationError):
        load_name(blank)


@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "a\tb", "a\x1bb", "a\x7fb", "a\x85b"])
def test_key_name_control_characters_rejected(bad):
    """Control characters inside a name are rejected."""
    with pytest.raises(ValidationError):
        load_name(bad)


@pytest.mark.parametrize(
    "cp", [0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x2028, 0x2029]
)
def test_key_name_bidi_overrides_rejected(cp):
    """Bidi overrides/isolates and line separators are rejected inside a name."""
    with pytest.raises(ValidationError):
        load_name(f"prod{chr(cp)}key")


@pytest.mark.parametrize("name", ["🔑 deploy key", "clé de prod", "本番キー", "ключ-1"])
def test_key_name_unicode_allowed(name):
    """Ordinary Unicode, emoji included, is a valid name."""
    assert load_name(name) == name


@pytest.mark.parametrize("body", [{}, {"name": None}, {"name": 5}, {"name": ["a"]}])
def test_key_name_required_string(body):
    """The name is required and must be a string."""
    with pytest.raises(ValidationError):
        KeyCreateSchema().load(body)
