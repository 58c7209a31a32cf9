"""Per-user endpoint limits (codegen, deploy): one definition for the REST views and MCP tools.

Both paths count in the same flask-limiter bucket: the same limit string (the action's
RATELIMIT_<ACTION> setting, config.BILLABLE_ACTIONS, read at call time), the same key
("user:<id>"), the same scope (the action's name, shared rather than per-endpoint, so a REST
call and an MCP tool call take from one allowance), the same storage and strategy (the app's
limiter). The REST views use the decorator, so flask-limiter reports the limit to the gate's
X-RateLimit-* headers; the MCP tools, which run outside a Flask view, call `hit()`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g
from limits import parse

from config import BILLABLE_ACTIONS
from extensions import limiter, user_limit_key

MESSAGE = "Too many requests to this endpoint; retry later."


class EndpointLimited(Exception):
    """The user has used up this action's per-user limit for now."""

    def __init__(self, action: str, limit: int, retry_after: int) -> None:
        super().__init__(MESSAGE)
        self.action, self.limit, self.retry_after = action, limit, retry_after


def limit_string(action: str) -> str:
    """The action's limit in limits notation, from the app's settings."""
    return current_app.config[BILLABLE_ACTIONS[action].limit_setting]


def route_limit(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a REST view with the action's per-user limit.

    The view is also marked in `g`, so the gate reads flask-limiter's state (for the
    X-RateLimit-* headers) only on the routes that have such a limit.
    """
    # The key is the limiter's own key function, extensions.acting_user.
    limit = limiter.shared_limit(lambda: limit_string(action), scope=action, error_message=MESSAGE)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        limited = limit(view)

        @wraps(view)
        def marked(*args: Any, **kwargs: Any) -> Any:
            g.endpoint_limited = True
            return limited(*args, **kwargs)

        return marked

    return decorate


def hit(action: str, user_id: str) -> None:
    """Count one use of `action` by the user; raise EndpointLimited when over the limit.

    Mirrors what flask-limiter does for a decorated view: the identifiers are the key prefix
    (RATELIMIT_KEY_PREFIX), the key and the scope, and a refused attempt is not counted.
    """
    item = parse(limit_string(action))
    identifiers = [current_app.config["RATELIMIT_KEY_PREFIX"], user_limit_key(user_id), action]
    identifiers = [part for part in identifiers if part]
    if limiter.limiter.hit(item, *identifiers):
        return
    stats = limiter.limiter.get_window_stats(item, *identifiers)
    raise EndpointLimited(action, item.amount, max(1, math.ceil(stats.reset_time - time.time())))
