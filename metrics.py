"""Prometheus metrics: every metric object, and the one-line recorders the code calls.

Labels are bounded by construction: an outcome is an error code of errors.CATALOGUE (or
`admitted`), a tool or action is a name from our own code, a kind or reason one of a few
words below. Nothing a client sends, and no key, user id, email or IP, ever becomes a label.

Under gunicorn the values live in PROMETHEUS_MULTIPROC_DIR (set up by deploy/gunicorn.conf.py
before any worker imports this module), so /metrics shows one set of numbers per instance.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, g
from prometheus_client import Counter, Histogram
from redis import exceptions as redis_errors

from config import read_setting
from store.errors import UNAVAILABLE

# prometheus_client opens a file in PROMETHEUS_MULTIPROC_DIR for each metric created below, as
# this module is imported: before create_app() checks the settings when the flask CLI loads
# the app. So that one is checked here first: a bad directory is the setting's one line
# (SettingError), never an open() traceback. (gunicorn's master has checked it already.)
read_setting("PROMETHEUS_MULTIPROC_DIR")

REQUESTS = Counter(
    "genmb_requests", "Counted requests (/api, /auth, /mcp) by the gate's decision", ["outcome"]
)
GATE_SECONDS = Histogram(
    "genmb_gate_seconds",
    "The gate's Redis call (count, authenticate, attribute), seconds",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REDIS_ERRORS = Counter("genmb_redis_errors", "Requests answered 503 for Redis, by kind", ["kind"])
CREDITS_CHARGED = Counter("genmb_credits_charged", "Credits charged, by action", ["action"])
JOBS = Counter("genmb_jobs", "Codegen and deploy job starts, by outcome", ["action", "outcome"])
KEYS_CREATED = Counter("genmb_api_keys_created", "API keys created (a roll creates one)")
KEYS_REVOKED = Counter("genmb_api_keys_revoked", "API keys revoked, by reason", ["reason"])
MCP_TOOL_CALLS = Counter("genmb_mcp_tool_calls", "MCP tool calls, by outcome", ["tool", "outcome"])

# Each counted request's decision, bound once: a request pays one dict lookup and one inc().
# The gate refuses with most of these; a blueprint's own access check (access_refusal) with
# session_required or cross_site_request, after the gate admitted the request.
GATE_OUTCOMES = (
    "admitted",
    "rate_limited",
    "missing_credentials",
    "invalid_api_key",
    "plan_required",
    "csrf_failed",
    "session_required",
    "cross_site_request",
    "payload_too_large",
    "unsupported_media_type",
    "service_unavailable",
    "internal_error",
)
_OUTCOME = {outcome: REQUESTS.labels(outcome) for outcome in GATE_OUTCOMES}
_ADMITTED = _OUTCOME["admitted"]
REVOKE_REASONS = ("user", "leaked", "operator", "rolled")
_REVOKED = {reason: KEYS_REVOKED.labels(reason) for reason in REVOKE_REASONS}
# Most specific first: OOM and read-only are response errors, a Sentinel without a primary is
# a connection error, the cluster ones share a base class.
_REDIS_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (redis_errors.OutOfMemoryError, "out_of_memory"),
    (redis_errors.ReadOnlyError, "read_only"),
    (redis_errors.TimeoutError, "timeout"),
    (redis_errors.ConnectionError, "connection"),
    (redis_errors.ClusterError, "cluster"),
    (redis_errors.ClusterDownError, "cluster"),
    (redis_errors.TryAgainError, "cluster"),
    (redis_errors.MovedError, "cluster"),
    (redis_errors.SlotNotCoveredError, "cluster"),
)
_ERROR_OF = {kind: REDIS_ERRORS.labels(kind) for _, kind in _REDIS_KINDS}
_ERROR_OF["other"] = REDIS_ERRORS.labels("other")
JOB_ACTIONS = ("codegen", "deploy")
for _action in JOB_ACTIONS:  # the series exist (at 0) before the first job
    CREDITS_CHARGED.labels(_action)
    JOBS.labels(_action, "started")
# mcp_server/tools.py's tools (a new one is counted too; it only lacks its zero series).
MCP_TOOLS = ("list_apps", "create_app", "start_codegen", "start_deploy", "get_usage")
for _tool in MCP_TOOLS:
    MCP_TOOL_CALLS.labels(_tool, "ok")

_enabled = True  # METRICS=off turns every recorder into a no-op (to measure their cost)


def init_app(app: Flask) -> None:
    """Record or not, as METRICS says (one switch per process: the last app built wins);
    count each admitted request once its blueprints' access checks have run."""
    global _enabled
    _enabled = app.config.get("METRICS", "on") == "on"
    app.teardown_request(_count_admitted)


def enabled() -> bool:
    """Whether metrics are recorded (and /metrics may serve them)."""
    return _enabled


def _outcome_of(exc: BaseException) -> str:
    """The outcome label of a gate refusal: its catalogued error code, bounded."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in _OUTCOME:
        return code
    return "service_unavailable" if isinstance(exc, UNAVAILABLE) else "internal_error"


def gate_outcomes(gate: Callable[[], None]) -> Callable[[], None]:
    """Wrap the gate's before_request hook: count each counted request's decision once (an
    admission at the request's end, unless a blueprint's access check refuses it first)."""

    @functools.wraps(gate)
    def counted_gate() -> None:
        try:
            gate()
        except Exception as exc:
            if _enabled:
                _OUTCOME[_outcome_of(exc)].inc()
            raise
        if _enabled and "rate" in g:  # the gate set g.rate: a counted request, admitted
            g.metrics_outcome = _ADMITTED

    return counted_gate


def access_refusal(check: Callable[[], None]) -> Callable[[], None]:
    """Wrap a blueprint's before_request access check: its refusal is the request's outcome
    (session_required, cross_site_request) instead of `admitted`."""

    @functools.wraps(check)
    def checked() -> None:
        try:
            check()
        except Exception as exc:
            if g.get("metrics_outcome") is not None:
                g.metrics_outcome = _OUTCOME[_outcome_of(exc)]
            raise

    return checked


def _count_admitted(exc: BaseException | None = None) -> None:
    """teardown_request: count the admitted request's outcome (runs even after a crash)."""
    child = g.pop("metrics_outcome", None)
    if child is not None:
        child.inc()


def admitted() -> None:
    """Count one admitted request answered outside Flask's hooks (security/hot_path.py)."""
    if _enabled:
        _ADMITTED.inc()


def gate_seconds(started: float) -> None:
    """Observe the gate's Redis call, begun at time.perf_counter() value `started`."""
    if _enabled:
        GATE_SECONDS.observe(time.perf_counter() - started)


def redis_error(exc: BaseException) -> None:
    """Count a request that failed because of Redis, by a few kinds of failure."""
    if _enabled:
        kind = next((name for cls, name in _REDIS_KINDS if isinstance(exc, cls)), "other")
        _ERROR_OF[kind].inc()


def _job_outcome(exc: BaseException) -> str:
    name = type(exc).__name__
    if name in ("InsufficientCredits", "NotFound"):
        return "insufficient_credits" if name == "InsufficientCredits" else "not_found"
    return "service_unavailable" if isinstance(exc, UNAVAILABLE) else "error"


def counts_jobs(start: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate services.jobs.start: count each start by outcome, and the credits charged."""

    @functools.wraps(start)
    def counted_start(principal: Any, app_id: str, kind: str, *args: Any, **kw: Any) -> Any:
        try:
            job = start(principal, app_id, kind, *args, **kw)
        except Exception as exc:
            if _enabled:
                JOBS.labels(kind, _job_outcome(exc)).inc()
            raise
        if _enabled:
            JOBS.labels(kind, "started").inc()
            CREDITS_CHARGED.labels(kind).inc(job.credits)
        return job

    return counted_start


def key_created() -> None:
    """Count one API key handed out."""
    if _enabled:
        KEYS_CREATED.inc()


def key_revoked(reason: str) -> None:
    """Count one API key revoked: user, leaked, operator or rolled."""
    if _enabled:
        _REVOKED[reason].inc()


def key_rolled() -> None:
    """A roll hands out a new key and retires the old one (reason `rolled`)."""
    key_created()
    key_revoked("rolled")


def mcp_tool_call(tool: str, outcome: str) -> None:
    """Count one MCP tool call: `ok`, or the refusal's error code."""
    if _enabled:
        MCP_TOOL_CALLS.labels(tool, outcome).inc()
