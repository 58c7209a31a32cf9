"""Apps and their generation/deploy jobs; a job is recorded only when its credits are charged."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from store.client import Storage
from store.clock import is_id, iso, month_of, new_id, utcnow
from store.errors import AppLimitReached, InsufficientCredits, NotFound

JOBS_KEPT_PER_APP = 100
CREDIT_COUNTER_TTL = 40 * 24 * 3600  # outlives the longest month; the key expires by itself


@dataclass(frozen=True)
class App:
    """An app owned by one user."""

    id: str
    name: str
    created_at: str


@dataclass(frozen=True)
class Job:
    """A recorded codegen or deploy request."""

    id: str
    app_id: str
    kind: str
    status: str
    credits: int
    created_at: str
    prompt: str | None = None


def create(storage: Storage, user_id: str, name: str, caps: Mapping[str, int] | None = None) -> App:
    """Create an app for the user; with `caps` (plan -> most apps), within the plan's cap.

    The cap check and the write are one script, so racing creates cannot pass the cap.
    Without caps (operator tools, tests) the app is written as is.
    """
    app = App(new_id("app"), name, iso(utcnow()))
    record = json.dumps(asdict(app))
    if caps is None:
        storage.redis.hset(storage.names.user_apps(user_id), app.id, record)
        return app
    pairs = [item for plan, cap in caps.items() for item in (plan, cap)]
    status = storage.run(
        "create_app",
        [storage.names.user(user_id), storage.names.user_apps(user_id)],
        [app.id, record, *pairs],
    )
    if status == "no_user":
        raise NotFound(user_id)
    if status == "app_limit_reached":
        raise AppLimitReached(user_id)
    return app


def list_for_user(storage: Storage, user_id: str) -> list[App]:
    """The user's apps, oldest first."""
    raw = storage.redis.hvals(storage.names.user_apps(user_id))
    apps = [App(**json.loads(item)) for item in raw]
    return sorted(apps, key=lambda a: (a.created_at, a.id))


def page_for_user(
    storage: Storage, user_id: str, limit: int, after: tuple[str, str] | None = None
) -> tuple[list[App], App | None]:
    """Up to `limit` apps, oldest first, after the (created_at, id) position `after`; and the
    last app of the page when more follow (the next page's position), else None.

    The list is bounded by the plan's app cap, so it is read whole and cut here: a position
    (not an offset) keeps pages stable while apps are created or deleted in between.
    """
    apps = list_for_user(storage, user_id)
    if after is not None:
        apps = [a for a in apps if (a.created_at, a.id) > after]
    page = apps[:limit]
    return page, (page[-1] if len(apps) > limit else None)


def _require_app_id(app_id: str) -> None:
    """Refuse a malformed app id without asking Redis."""
    if not is_id("app", app_id):
        raise NotFound(app_id)


def get(storage: Storage, user_id: str, app_id: str) -> App:
    """One of the user's apps; NotFound for an unknown id or someone else's."""
    _require_app_id(app_id)
    raw = storage.redis.hget(storage.names.user_apps(user_id), app_id)
    if raw is None:
        raise NotFound(app_id)
    return App(**json.loads(raw))


def delete(storage: Storage, user_id: str, app_id: str) -> None:
    """Delete one of the user's apps and its job history together."""
    _require_app_id(app_id)
    with storage.redis.pipeline(transaction=True) as pipe:
        pipe.hdel(storage.names.user_apps(user_id), app_id)
        pipe.delete(storage.names.app_jobs(user_id, app_id))
        removed, _ = pipe.execute()
    if not removed:
        raise NotFound(app_id)


def start_job(
    storage: Storage,
    user_id: str,
    app_id: str,
    kind: str,
    cost: int,
    allowance: int,
    prompt: str | None = None,
) -> Job:
    """Charge the credits and record the job atomically; nothing changes if either fails."""
    _require_app_id(app_id)
    now = utcnow()
    job = Job(new_id("job"), app_id, kind, "queued", cost, iso(now), prompt)
    status, _used = storage.run(
        "charge_job",
        [
            storage.names.credits(user_id, month_of(now)),
            storage.names.user_apps(user_id),
            storage.names.app_jobs(user_id, app_id),
        ],
        [cost, allowance, app_id, json.dumps(asdict(job)), CREDIT_COUNTER_TTL, JOBS_KEPT_PER_APP],
    )
    if status == "not_found":
        raise NotFound(app_id)
    if status == "insufficient_credits":
        raise InsufficientCredits(user_id)
    return job
