"""Domain errors raised by the data layer; errors.py maps each to one HTTP answer."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every domain error."""


class NotFound(StoreError):
    """The resource does not exist, or belongs to someone else."""


class EmailTaken(StoreError):
    """A user with this email already exists."""


class PlanRequired(StoreError):
    """The user's plan does not allow this."""


class KeyLimitReached(StoreError):
    """The user already holds the most keys allowed."""


class AppLimitReached(StoreError):
    """The user already holds the most apps the plan allows."""


class InsufficientCredits(StoreError):
    """The monthly credit allowance cannot cover the action."""
