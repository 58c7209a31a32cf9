"""Settings read from the environment: storage, limits, the plan table and credit costs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many

from store import redis_url


@dataclass(frozen=True)
class Plan:
    """What a plan grants: monthly credits, whether it may hold API keys, how many apps."""

    name: str
    monthly_credits: int
    api_keys: bool
    max_apps: int = 100


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """Read an integer setting, failing loudly on garbage."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    """Read a number setting, failing loudly on garbage."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def rate_limit_parts(text: str) -> tuple[int, int]:
    """Turn limits notation ("200 per minute") into (amount, window in milliseconds)."""
    try:
        items = parse_many(text)
    except ValueError as exc:
        raise RuntimeError(f"not a rate limit: {text!r} (try '200 per minute')") from exc
    if len(items) != 1 or items[0].amount < 1:
        raise RuntimeError(f"need exactly one limit of at least 1 request, got {text!r}")
    return items[0].amount, items[0].get_expiry() * 1000


# Where GitHub publishes the keys that sign secret-scanning reports.
GITHUB_SECRET_SCANNING_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"

# Host and Origin values /mcp accepts (DNS-rebinding protection). "name:*" allows any port.
MCP_DEFAULT_HOSTS = "127.0.0.1,127.0.0.1:*,localhost,localhost:*,[::1],[::1]:*"
MCP_DEFAULT_ORIGINS = (
    "http://127.0.0.1,http://127.0.0.1:*,http://localhost,http://localhost:*,"
    "http://[::1],http://[::1]:*"
)


def comma_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """A comma-separated setting as a list of trimmed, non-empty entries (lists pass through)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def plans_from_env(env: Mapping[str, str]) -> dict[str, Plan]:
    """The plan table: monthly credits (CREDITS_<PLAN>), who may hold keys, and the most
    apps a user may hold (MAX_APPS_<PLAN>)."""
    return {
        "free": Plan("free", _int(env, "CREDITS_FREE", 50), api_keys=False,
                     max_apps=_int(env, "MAX_APPS_FREE", 10)),
        "pro": Plan("pro", _int(env, "CREDITS_PRO", 1000), api_keys=True,
                    max_apps=_int(env, "MAX_APPS_PRO", 100)),
        "business": Plan("business", _int(env, "CREDITS_BUSINESS", 10000), api_keys=True,
                         max_apps=_int(env, "MAX_APPS_BUSINESS", 1000)),
    }


def app_caps(plans: Mapping[str, Plan]) -> dict[str, int]:
    """Plan name -> most apps, as the app store takes it."""
    return {name: plan.max_apps for name, plan in plans.items()}


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build app.config from the environment plus overrides; refuse unsafe values at start-up."""
    env = os.environ if env is None else env
    s: dict[str, Any] = {
        "ENV": env.get("GENMB_ENV", "production"),
        "SECRET_KEY": env.get("SECRET_KEY", ""),
        "REDIS_URL": env.get("REDIS_URL", ""),
        "REDIS_TIMEOUT": _float(env, "REDIS_TIMEOUT", 1.0),
        "REDIS_KEY_PREFIX": env.get("REDIS_KEY_PREFIX", "genmb"),
        "REDIS_SENTINEL_PASSWORD": env.get("REDIS_SENTINEL_PASSWORD", ""),
        # Empty: wait for 1 replica when the primary has any, for none when it has none.
        "REVOKE_MIN_REPLICAS": env.get("REVOKE_MIN_REPLICAS", "").strip(),
        "REVOKE_WAIT_MS": _int(env, "REVOKE_WAIT_MS", 500),
        "TRUSTED_PROXY_COUNT": _int(env, "TRUSTED_PROXY_COUNT", 0),
        "RATELIMIT_GLOBAL": env.get("RATELIMIT_GLOBAL", "200 per minute"),
        "RATELIMIT_CODEGEN": env.get("RATELIMIT_CODEGEN", "10 per minute"),
        "RATELIMIT_DEPLOY": env.get("RATELIMIT_DEPLOY", "5 per minute"),
        "MAX_KEYS_PER_USER": _int(env, "MAX_KEYS_PER_USER", 5),
        "PUBLIC_URL": env.get("PUBLIC_URL", "").strip().rstrip("/"),
        "SESSION_LIFETIME_SECONDS": _int(env, "SESSION_LIFETIME_SECONDS", 14 * 24 * 3600),
        "PASSWORD_SCRYPT_N": _int(env, "PASSWORD_SCRYPT_N", 2**14),
        "COST_CODEGEN": _int(env, "COST_CODEGEN", 10),
        "COST_DEPLOY": _int(env, "COST_DEPLOY", 5),
        "MCP_ALLOWED_HOSTS": env.get("MCP_ALLOWED_HOSTS", "").strip() or MCP_DEFAULT_HOSTS,
        "MCP_ALLOWED_ORIGINS": env.get("MCP_ALLOWED_ORIGINS", "").strip() or MCP_DEFAULT_ORIGINS,
        "SECURITY_LOG_MAX_EVENTS": _int(env, "SECURITY_LOG_MAX_EVENTS", 1000),
        "SECURITY_LOG_MAX_DAYS": _int(env, "SECURITY_LOG_MAX_DAYS", 90),
        "SECRET_SCANNING_KEYS_URL": env.get("SECRET_SCANNING_KEYS_URL", "").strip()
        or GITHUB_SECRET_SCANNING_KEYS_URL,
        "SECRET_SCANNING_RATELIMIT": env.get("SECRET_SCANNING_RATELIMIT", "60 per minute"),
        "SECRET_SCANNING_MAX_BYTES": _int(env, "SECRET_SCANNING_MAX_BYTES", 256 * 1024),
        "PLANS": plans_from_env(env),
        "TESTING": False,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_NAME": "genmb_session",
        "API_TITLE": "GenMB API",
        "API_VERSION": "1.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
    s.update(overrides or {})
    development = s["ENV"] == "development" or bool(s["TESTING"])
    if s["ENV"] not in ("development", "production"):
        raise RuntimeError("GENMB_ENV must be 'development' or 'production'")
    if not s["SECRET_KEY"]:
        if not development:
            raise RuntimeError("SECRET_KEY must be set (GENMB_ENV=development derives one)")
        # Development only: derived, not random, so that every worker of one deployment
        # agrees on it (CSRF tokens made by one worker must verify on another).
        seed = f"genmb-development-secret:{s['REDIS_URL']}:{s['REDIS_KEY_PREFIX']}"
        s["SECRET_KEY"] = hashlib.sha256(seed.encode()).hexdigest()
    if not s["REDIS_URL"]:
        raise RuntimeError(
            "REDIS_URL must be set: redis://host:port/db, unix:///path/to/redis.sock, "
            "or memory:// for the embedded single-process store"
        )
    try:
        target = redis_url.parse(s["REDIS_URL"])
    except redis_url.RedisUrlError as exc:
        raise RuntimeError(str(exc)) from None
    s["REVOKE_MIN_REPLICAS"] = _min_replicas(s["REVOKE_MIN_REPLICAS"])
    if not 0 < s["REVOKE_WAIT_MS"] <= 60_000:
        raise RuntimeError(
            f"REVOKE_WAIT_MS must be 1..60000 milliseconds, got {s['REVOKE_WAIT_MS']}"
        )
    if s["TRUSTED_PROXY_COUNT"] < 0:
        raise RuntimeError("TRUSTED_PROXY_COUNT must be 0 or more")
    if s["PUBLIC_URL"] and not _is_base_url(s["PUBLIC_URL"]):
        raise RuntimeError("PUBLIC_URL must be an http(s) URL such as https://genmb.example.com")
    s["SESSION_COOKIE_SECURE"] = not development
    if s["SESSION_COOKIE_SECURE"] and s["SESSION_COOKIE_NAME"] == "genmb_session":
        # __Host-: browsers take it only Secure, for Path=/ and without Domain, so neither a
        # sibling subdomain nor a plain-HTTP page can set or shadow the session cookie.
        s["SESSION_COOKIE_NAME"] = "__Host-genmb_session"
    for name in ("MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS"):
        s[name] = comma_list(s[name])
    if not s["MCP_ALLOWED_HOSTS"]:
        raise RuntimeError("MCP_ALLOWED_HOSTS must list at least one host (e.g. api.example.com)")
    s["GLOBAL_LIMIT"], s["GLOBAL_WINDOW_MS"] = rate_limit_parts(s["RATELIMIT_GLOBAL"])
    for name in ("RATELIMIT_CODEGEN", "RATELIMIT_DEPLOY"):
        rate_limit_parts(s[name])  # refuse a typo at start-up, not on the first request
    _check_security_settings(s)
    uri, options = limits_storage(target, s["REDIS_TIMEOUT"], s["REDIS_SENTINEL_PASSWORD"])
    s.setdefault("RATELIMIT_STORAGE_URI", uri)
    s.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
    s.setdefault("RATELIMIT_KEY_PREFIX", f"{s['REDIS_KEY_PREFIX']}:limiter")
    return s


def _check_security_settings(s: Mapping[str, Any]) -> None:
    """The security log's caps and the secret-scanning receiver's settings, checked once."""
    if not 1 <= s["SECURITY_LOG_MAX_EVENTS"] <= 100_000:
        raise RuntimeError("SECURITY_LOG_MAX_EVENTS must be 1..100000, "
                           f"got {s['SECURITY_LOG_MAX_EVENTS']}")
    if not 1 <= s["SECURITY_LOG_MAX_DAYS"] <= 3650:
        raise RuntimeError("SECURITY_LOG_MAX_DAYS must be 1..3650, "
                           f"got {s['SECURITY_LOG_MAX_DAYS']}")
    if not _is_base_url(s["SECRET_SCANNING_KEYS_URL"].split("?", 1)[0]):
        raise RuntimeError("SECRET_SCANNING_KEYS_URL must be an http(s) URL")
    try:
        rate_limit_parts(s["SECRET_SCANNING_RATELIMIT"])
    except RuntimeError as exc:
        raise RuntimeError(f"SECRET_SCANNING_RATELIMIT: {exc}") from None
    if not 1024 <= s["SECRET_SCANNING_MAX_BYTES"] <= s["MAX_CONTENT_LENGTH"]:
        raise RuntimeError("SECRET_SCANNING_MAX_BYTES must be 1024..1048576, "
                           f"got {s['SECRET_SCANNING_MAX_BYTES']}")


def _is_base_url(url: str) -> bool:
    """An absolute http(s) URL without query or fragment (the MCP URL is built on it)."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not (parts.query or parts.fragment)
    )


def _min_replicas(raw: str) -> int | None:
    """REVOKE_MIN_REPLICAS: empty for "1 if the primary has replicas", else 0 or more."""
    if not raw:
        return None
    if not raw.isdigit():
        raise RuntimeError(f"REVOKE_MIN_REPLICAS must be empty or a whole number, got {raw!r}")
    return int(raw)


def limits_storage(
    target: redis_url.RedisTarget, timeout: float, sentinel_password: str
) -> tuple[str, dict[str, Any]]:
    """The same Redis for the limits library (flask-limiter's storage): URI and options."""
    if target.mode == "embedded":
        return target.url, {}
    timeouts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.cluster is not None:
        nodes = target.cluster
        # redis-py's cluster client reads from primaries only unless told otherwise.
        options = {**timeouts, "username": nodes.username, "password": nodes.password}
        return f"redis+cluster://{redis_url.host_list(nodes.nodes)}", options
    if target.sentinel is None:
        url = target.url
        if url.startswith("unix://"):
            url = "redis+unix://" + url[len("unix://"):]
        return url, timeouts
    where = target.sentinel
    # limits reads the service name from the path and would send the data nodes' password to
    # the sentinels too; so the URI names only the sentinels, and the rest goes as options.
    hosts = redis_url.host_list(where.sentinels)
    options = {
        **timeouts,
        "db": where.db,
        "username": where.username,
        "password": where.password,
        "use_replicas": False,  # never read from a replica
        "sentinel_kwargs": {"username": None, "password": sentinel_password or None, **timeouts},
    }
    return f"redis+sentinel://{hosts}/{where.service_name}", options
