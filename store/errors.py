"""Domain errors raised by the data layer; errors.py maps each to one HTTP answer."""

from __future__ import annotations

from redis import exceptions as redis_errors

# Redis is unreachable or cannot take writes now: every caller answers 503 for these.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # MasterNotFoundError (Sentinel) is one of these
    redis_errors.TimeoutError,
    redis_errors.OutOfMemoryError,  # maxmemory + noeviction: writes refused
    redis_errors.ReadOnlyError,  # a replica mid-failover
    redis_errors.ClusterDownError,  # Cluster: a slot without a primary
    redis_errors.TryAgainError,  # Cluster: a slot being moved
    redis_errors.SlotNotCoveredError,  # Cluster: the client's slot map has a hole
    redis_errors.MovedError,  # Cluster: the slot moved (the client re-reads the map)
    redis_errors.ClusterError,  # Cluster: redirected too often while the slot map settles
)
# On Cluster, these mean this process's slot map is out of date (a failover happened).
SLOT_MAP_STALE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.MovedError,
    redis_errors.AskError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.SlotNotCoveredError,
)


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


class KeyRolling(StoreError):
    """The key is in a roll's overlap already, or the key it was rolled from still is."""


class AppLimitReached(StoreError):
    """The user already holds the most apps the plan allows."""


class InsufficientCredits(StoreError):
    """The monthly credit allowance cannot cover the action."""


class RevocationUnconfirmed(StoreError):
    """The primary revoked the key, but too few replicas confirmed it in time."""

    def __init__(self, needed: int, confirmed: int) -> None:
        super().__init__(f"{confirmed} of {needed} replicas confirmed the revocation")
        self.needed, self.confirmed = needed, confirmed
