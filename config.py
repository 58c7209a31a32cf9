"""Settings read from the environment: storage, limits, the plan table and credit costs."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from limits import parse_many
from redis.connection import parse_url as parse_redis_url

from store import redis_url


@dataclass(frozen=True)
class Plan:
    """What a plan grants: monthly credits, whether it may hold API keys, how many apps."""

    name: str
    monthly_credits: int
    api_keys: bool
    max_apps: int = 100

    @property
    def title(self) -> str:
        """The plan's name as the pages and messages show it ("Pro")."""
        return self.name.replace("_", " ").title()


@dataclass(frozen=True)
class PlanRow:
    """A row of the plan table: the plan's name, whether its users may hold API keys, and
    the defaults of its two settings, CREDITS_<PLAN> and MAX_APPS_<PLAN>."""

    name: str
    api_keys: bool
    credits: int
    max_apps: int


# The plan table: every plan, once. The CREDITS_<PLAN> and MAX_APPS_<PLAN> settings,
# app.config["PLANS"], the CLI's --plan choices, which plans may hold keys (the gate, key
# creation, the pages) and the words "Pro or Business" all derive from it.
PLAN_TABLE: tuple[PlanRow, ...] = (
    PlanRow("free", api_keys=False, credits=50, max_apps=10),
    PlanRow("pro", api_keys=True, credits=1000, max_apps=100),
    PlanRow("business", api_keys=True, credits=10_000, max_apps=1000),
)
SIGNUP_PLAN = "free"  # where a new account starts (CONTRACT §3)


def plan_names() -> list[str]:
    """Every plan's name, in table order (the CLI's choices)."""
    return [row.name for row in PLAN_TABLE]


@dataclass(frozen=True)
class BillableAction:
    """An action that costs credits and has a per-user limit: its name (the route's last
    segment, the job's kind and the limiter's scope), what it does (the MCP tool says it),
    and the defaults of its settings, COST_<ACTION> and RATELIMIT_<ACTION>."""

    name: str
    description: str
    cost: int
    limit: str

    @property
    def cost_setting(self) -> str:
        """The setting holding the credits one job costs."""
        return f"COST_{self.name.upper()}"

    @property
    def limit_setting(self) -> str:
        """The setting holding the per-user limit, in limits notation."""
        return f"RATELIMIT_{self.name.upper()}"


# The billable actions table: services.jobs charges, services.limits counts, the settings
# table and the MCP tools' descriptions read it.
BILLABLE_ACTIONS: dict[str, BillableAction] = {
    action.name: action
    for action in (
        BillableAction(
            "codegen",
            "Start a code generation job for one of the account's apps from a "
            "natural-language prompt.",
            cost=10,
            limit="10 per minute",
        ),
        BillableAction(
            "deploy",
            "Start a deploy job for one of the account's apps.",
            cost=5,
            limit="5 per minute",
        ),
    )
}


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
    """app.config["PLANS"]: each plan of the table with its monthly credits (CREDITS_<PLAN>)
    and the most apps a user may hold (MAX_APPS_<PLAN>), read from `env`."""
    return {
        row.name: Plan(
            row.name,
            _plan_setting("CREDITS", row).read(env),
            api_keys=row.api_keys,
            max_apps=_plan_setting("MAX_APPS", row).read(env),
        )
        for row in PLAN_TABLE
    }


def plans_with_keys(plans: Mapping[str, Plan]) -> list[str]:
    """The names of the plans whose users may hold (and use) API keys."""
    return [name for name, plan in plans.items() if plan.api_keys]


def key_plans_text(plans: Mapping[str, Plan], conjunction: str = "or") -> str:
    """The plans with API keys as a reader says them: "Pro or Business" ("and": "Pro and
    Business"; three: "Pro, Team or Business")."""
    titles = [plan.title for plan in plans.values() if plan.api_keys]
    if len(titles) < 2:
        return "".join(titles)
    return f"{', '.join(titles[:-1])} {conjunction} {titles[-1]}"


def app_caps(plans: Mapping[str, Plan]) -> dict[str, int]:
    """Plan name -> most apps, as the app store takes it."""
    return {name: plan.max_apps for name, plan in plans.items()}


# ---- the settings table ------------------------------------------------------------------
# Every environment variable the service reads, defined once: its type, what is allowed, its
# default and what it means. load_settings() checks each one at start-up (gunicorn's master
# does so once, before any worker forks: deploy/gunicorn.conf.py) and README.md's
# configuration table is rendered from it (settings_markdown(); tests/unit/test_config.py keeps
# the two equal). An unset or empty variable takes the default.


class SettingError(click.ClickException, RuntimeError):
    """A setting cannot be used; the message is one line naming it, its value and the rule.

    A ClickException too, so that `flask --app app ...` prints it as one "Error: ..." line
    (exit 1) rather than a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Setting:
    """One environment variable: how to read it, what is allowed, and what it means."""

    name: str
    kind: str  # the README's type column
    allowed: str  # the rule, in words: the README's range column and every error message
    default: str  # the raw default ("" = none); the README shows `shown_default` if given
    meaning: str
    parse: Callable[[str], Any]  # raw text (stripped, non-empty) -> value; ValueError if bad
    secret: bool = False  # never echoed in an error message
    shown_default: str = ""
    empty_ok: bool = True  # False: set but empty is refused (no silent fallback)

    def read(self, env: Mapping[str, str]) -> Any:
        """The value from `env`, or the default; SettingError naming the rule if not allowed."""
        raw = env.get(self.name)
        text = "" if raw is None else raw.strip()
        if raw is not None and not text and not self.empty_ok:
            raise SettingError(f"{self.name} is set but empty: allowed is {self.allowed}")
        if not text:
            text = self.default
            if not text:
                return None
        try:
            return self.parse(text)
        except ValueError as exc:
            shown = "(value hidden)" if self.secret else repr(text)
            detail = f" ({exc})" if str(exc) else ""
            raise SettingError(
                f"{self.name}={shown} is not allowed{detail}: allowed is {self.allowed}"
            ) from None


def _int(
    low: int, high: int, *, digits_only: bool = False, power_of_two: bool = False
) -> Callable[[str], int]:
    """A whole number from low to high; `digits_only` refuses a sign, `power_of_two` any
    other number."""

    def parse(text: str) -> int:
        if digits_only and not text.isdigit():
            raise ValueError("")
        try:
            value = int(text)
        except ValueError:
            raise ValueError("not a whole number") from None
        if not low <= value <= high or (power_of_two and value & (value - 1)):
            raise ValueError("")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    """A number with low < value <= high (low itself excluded: a timeout of 0 is none)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not (low < value <= high) or value != value:  # NaN compares false to everything
            raise ValueError("")
        return value

    return parse


def _choice(*values: str, fold: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.lower() if fold else text
        if value not in values:
            raise ValueError("")
        return value

    return parse


def _text(text: str) -> str:
    return text


def _rate_limit(text: str) -> str:
    rate_limit_parts(text)  # RuntimeError -> ValueError below
    return text


def _checked_rate_limit(text: str) -> str:
    try:
        return _rate_limit(text)
    except RuntimeError:
        raise ValueError("") from None


_PREFIX = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")


def _key_prefix(text: str) -> str:
    if not _PREFIX.match(text):
        raise ValueError("")
    return text


def _redis_url(text: str) -> str:
    try:
        target = redis_url.parse(text)
    except redis_url.RedisUrlError as exc:
        raise SettingError(str(exc)) from None  # its own one line, never with the password
    if target.mode == "single":
        try:
            parse_redis_url(text)
        except (ValueError, TypeError):
            raise SettingError(
                "REDIS_URL cannot be parsed: use redis://[[user]:password@]host:port/db, "
                "rediss://… or unix:///path/to/redis.sock"
            ) from None
    return text


def _keys_document_url(text: str) -> str:
    if not _is_base_url(text.split("?", 1)[0]):
        raise ValueError("")
    return text


def _public_url(text: str) -> str:
    url = text.rstrip("/")
    if not _is_base_url(url):
        raise ValueError("")
    return url


_HOST_ENTRY = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?:\d{1,5}|\*))?$")
_ORIGIN_ENTRY = re.compile(r"^https?://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?:\d{1,5}|\*))?$")


def _list_of(pattern: re.Pattern[str]) -> Callable[[str], list[str]]:
    """A comma-separated list with at least one entry, every entry matching `pattern`."""

    def parse(text: str) -> list[str]:
        items = comma_list(text)
        if not items:
            raise ValueError("no entry")
        for item in items:
            if not pattern.match(item):
                raise ValueError(f"not a valid entry: {item!r}")
        return items

    return parse


def parse_bind(text: str) -> tuple[str, int] | str:
    """BIND: ("host", port) for HOST:PORT (IPv6 in brackets), or the path for unix:PATH."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise ValueError("")
        return path
    match = re.match(
        r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+)):(?P<port>\d+)$", text
    )
    if not match:
        raise ValueError("")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError("")
    return match["v6"] or match["name"], port


def _bind(text: str) -> str:
    parse_bind(text)
    return text


def _access_log(text: str) -> str:
    if text != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        raise ValueError("its directory does not exist")
    return text


def _metrics_token(text: str) -> str:
    if len(text) < 16 or any(c.isspace() for c in text):
        raise ValueError("")
    return text


def _metrics_bind(text: str) -> str:
    if isinstance(parse_bind(text), str):
        raise ValueError("a unix socket is not supported here")
    return text


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise ValueError("not an existing directory")
    return text


_LIMIT_RULE = (
    "a rate limit in limits notation, exactly one limit of at least 1 request "
    "(e.g. `10 per minute`)"
)


def _whole_number(name: str, low: int, high: int, default: int, meaning: str) -> Setting:
    """A setting that is a whole number from low to high."""
    return Setting(name, "integer", f"{low}–{high}", str(default), meaning, _int(low, high))


# The settings every plan has: prefix -> (lowest, highest, the row's default, meaning).
PLAN_SETTINGS = {
    "CREDITS": (
        0,
        1_000_000_000,
        "credits",
        "monthly credit allowance of plan `{plan}` (calendar month, UTC)",
    ),
    "MAX_APPS": (
        1,
        1_000_000,
        "max_apps",
        "most apps a user on plan `{plan}` may hold (409 `app_limit_reached` beyond)",
    ),
}


def _plan_setting(prefix: str, row: PlanRow) -> Setting:
    """<PREFIX>_<PLAN>: one of the plan's settings (CREDITS_PRO, MAX_APPS_FREE...)."""
    low, high, default, meaning = PLAN_SETTINGS[prefix]
    return _whole_number(
        f"{prefix}_{row.name.upper()}",
        low,
        high,
        getattr(row, default),
        meaning.format(plan=row.name),
    )


def _limit_setting(action: BillableAction) -> Setting:
    """RATELIMIT_<ACTION>: the action's per-user limit."""
    return Setting(
        action.limit_setting,
        "rate limit",
        _LIMIT_RULE,
        action.limit,
        f"per user, `POST /api/apps/<id>/{action.name}`",
        _checked_rate_limit,
    )


def _cost_setting(action: BillableAction) -> Setting:
    """COST_<ACTION>: the credits one job costs."""
    return _whole_number(
        action.cost_setting, 0, 1_000_000, action.cost, f"credits charged per {action.name} job"
    )


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "GENMB_ENV",
        "choice",
        "`development` or `production`",
        "production",
        "`development` turns off the `Secure` cookie flag (plain-HTTP localhost) and "
        "allows a generated `SECRET_KEY`; production names the cookie "
        "`__Host-genmb_session` and refuses a `Host` outside `PUBLIC_URL`'s host and "
        "`MCP_ALLOWED_HOSTS` (421 `host_not_allowed`)",
        _choice("development", "production"),
    ),
    Setting(
        "SECRET_KEY",
        "secret",
        "any text; required in production",
        "",
        "HMAC key for CSRF tokens; in development one is derived from `REDIS_URL` when "
        "unset, so every worker agrees (`make run` keeps a random one in `var/secret_key`)",
        _text,
        secret=True,
        shown_default="(required in production)",
    ),
    Setting(
        "REDIS_URL",
        "URL",
        "`redis://`, `rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://` or "
        "`memory://`",
        "",
        "`redis://[[user]:password@]host:port/db`, `rediss://…`, "
        "`unix:///path/redis.sock`; `redis+sentinel://[[user]:password@]host1:port1"
        "[,host2:port2…]/<service_name>[/db]` for a primary watched by Sentinel (the "
        "password is the data nodes'; the service always talks to the current primary, "
        "never to a replica); `redis+cluster://[[user]:password@]host1:port1"
        "[,host2:port2…]` for a Redis Cluster (any nodes as startup nodes; every slot "
        "must be served; never reads from replicas); or `memory://` for the embedded "
        "single-process store (always exactly one gunicorn worker)",
        _redis_url,
        secret=True,
        shown_default="(required)",
    ),
    Setting(
        "REDIS_SENTINEL_PASSWORD",
        "secret",
        "any text",
        "",
        "the sentinels' own password, when they have one",
        _text,
        secret=True,
        shown_default="(none)",
    ),
    Setting(
        "REVOKE_MIN_REPLICAS",
        "integer",
        "0–100, or empty",
        "",
        "replicas that must confirm a revocation (also key creation and plan changes) "
        "before it is reported done",
        _int(0, 100, digits_only=True),
        shown_default="(empty: 1 when the primary has replicas, else 0)",
    ),
    Setting(
        "REVOKE_WAIT_MS",
        "integer",
        "1–60000 (milliseconds)",
        "500",
        "how long a revocation waits for those replicas; fewer in time → 503 "
        "`revocation_unconfirmed`",
        _int(1, 60_000),
    ),
    Setting(
        "REDIS_TIMEOUT",
        "number",
        "more than 0, at most 60 (seconds)",
        "1",
        "seconds for Redis connect and reads; an outage answers 503 within about this",
        _float(0, 60),
    ),
    Setting(
        "REDIS_KEY_PREFIX",
        "text",
        "1–64 of `A–Z a–z 0–9 _ . : / -` (no `{` `}`: hash tags, docs/storage.md); "
        "set but empty is refused",
        "genmb",
        "prefix of every Redis key the service writes (the limiter's too)",
        _key_prefix,
        empty_ok=False,
    ),
    Setting(
        "TRUSTED_PROXY_COUNT",
        "integer",
        "0–10",
        "0",
        "number of proxies in front that append to `X-Forwarded-For`; 0 = the TCP peer is "
        "the client. Only a valid IP address is taken from the header (anything else "
        "counts under the TCP peer, logged once, redacted); HSTS is sent when the proxy "
        "reports HTTPS",
        _int(0, 10),
    ),
    Setting(
        "RATELIMIT_GLOBAL",
        "rate limit",
        _LIMIT_RULE,
        "200 per minute",
        "per client IP, over `/api/`, `/auth/`, `/mcp`; a rolling window shared by all "
        "workers and instances, never over the limit (may refuse up to 1/60 of the window "
        "early)",
        _checked_rate_limit,
    ),
    Setting(
        "RATELIMIT_SESSION_RESCUE",
        "rate limit",
        _LIMIT_RULE,
        "30 per minute",
        "per logged-in session, once its client IP's window is spent: loading the account "
        "and the key list and revoking keys still work this often, so a runaway script "
        "cannot lock its owner out of the key page",
        _checked_rate_limit,
    ),
    *(_limit_setting(action) for action in BILLABLE_ACTIONS.values()),
    *(_cost_setting(action) for action in BILLABLE_ACTIONS.values()),
    *(_plan_setting("CREDITS", row) for row in PLAN_TABLE),
    Setting(
        "MAX_KEYS_PER_USER",
        "integer",
        "1–100",
        "5",
        "most live API keys per user",
        _int(1, 100),
    ),
    Setting(
        "KEY_USAGE",
        "choice",
        "`on` or `off`",
        "on",
        "count each API key's requests per UTC day in the gate's script "
        "(`GET /api/keys/<id>/usage`); `off` only to measure what counting costs (`make bench`)",
        _choice("on", "off", fold=True),
    ),
    *(_plan_setting("MAX_APPS", row) for row in PLAN_TABLE),
    Setting(
        "MCP_ALLOWED_HOSTS",
        "list",
        "comma-separated, at least one `host`, `host:port` or `host:*`",
        MCP_DEFAULT_HOSTS,
        "`Host` values `/mcp` accepts (`name:*` = any port); **set the public host name in "
        "production** — see `docs/mcp.md`",
        _list_of(_HOST_ENTRY),
        shown_default="loopback only (`127.0.0.1`, `localhost`, `[::1]`, any port)",
    ),
    Setting(
        "MCP_ALLOWED_ORIGINS",
        "list",
        "comma-separated, at least one `http(s)://host[:port or :*]`",
        MCP_DEFAULT_ORIGINS,
        "`Origin` values `/mcp` accepts (`name:*` = any port) — see `docs/mcp.md`",
        _list_of(_ORIGIN_ENTRY),
        shown_default="loopback only (`http://127.0.0.1`, `http://localhost`, "
        "`http://[::1]`, any port)",
    ),
    Setting(
        "PUBLIC_URL",
        "URL",
        "an `http(s)://` URL without query or fragment",
        "",
        "public base URL, e.g. `https://genmb.example.com`; the MCP panel shows "
        "`$PUBLIC_URL/mcp` in its client configurations; its host is allowed as `Host` "
        "in production",
        _public_url,
        shown_default="(the request's host)",
    ),
    Setting(
        "SESSION_LIFETIME_SECONDS",
        "integer",
        "60–31536000 (seconds)",
        "1209600",
        "lifetime of a login session",
        _int(60, 365 * 24 * 3600),
        shown_default="`1209600` (14 days)",
    ),
    Setting(
        "PASSWORD_SCRYPT_N",
        "integer",
        "a power of 2 from 1024 to 131072",
        "16384",
        "scrypt cost for new password hashes",
        _int(2**10, 2**17, power_of_two=True),
    ),
    Setting(
        "SECURITY_LOG_MAX_EVENTS",
        "integer",
        "1–100000",
        "1000",
        "most events kept in an account's security log (the oldest go first)",
        _int(1, 100_000),
    ),
    Setting(
        "SECURITY_LOG_MAX_DAYS",
        "integer",
        "1–3650",
        "90",
        "days an event stays in an account's security log",
        _int(1, 3650),
    ),
    Setting(
        "SECRET_SCANNING_KEYS_URL",
        "URL",
        "an http(s) URL",
        GITHUB_SECRET_SCANNING_KEYS_URL,
        "GitHub's public keys document for secret-scanning reports (docs/secret-scanning.md)",
        _keys_document_url,
    ),
    Setting(
        "SECRET_SCANNING_RATELIMIT",
        "rate limit",
        _LIMIT_RULE,
        "60 per minute",
        "per client IP, `POST /api/secret-scanning/github` (not counted in the global window)",
        _checked_rate_limit,
    ),
    Setting(
        "SECRET_SCANNING_MAX_BYTES",
        "integer",
        "1024–1048576",
        "262144",
        "largest secret-scanning report accepted (413 beyond)",
        _int(1024, 1024 * 1024),
    ),
    Setting(
        "PORT",
        "integer",
        "1–65535",
        "8000",
        "the port gunicorn listens on (`make run`), or nginx (`make stack`)",
        _int(1, 65535),
    ),
    Setting(
        "BIND",
        "address",
        "`HOST:PORT` (IPv6 in brackets) or `unix:PATH`",
        "",
        "gunicorn's listening address (`deploy/gunicorn.conf.py`, `make run`)",
        _bind,
        shown_default="`127.0.0.1:$PORT`",
    ),
    Setting(
        "WORKERS",
        "integer",
        "1–64",
        "2",
        "gunicorn workers (per instance under `make stack`); the embedded store always "
        "runs exactly one",
        _int(1, 64),
    ),
    Setting(
        "GUNICORN_TIMEOUT",
        "integer",
        "1–3600 (seconds)",
        "30",
        "gunicorn's worker timeout",
        _int(1, 3600),
    ),
    Setting(
        "LOG_LEVEL",
        "choice",
        "`debug`, `info`, `warning`, `error` or `critical`",
        "info",
        "gunicorn's log level",
        _choice("debug", "info", "warning", "error", "critical", fold=True),
    ),
    Setting(
        "ACCESS_LOG",
        "path",
        "`-` (stdout) or a file in an existing directory",
        "-",
        "gunicorn's access log",
        _access_log,
    ),
    Setting(
        "LOG_FORMAT",
        "choice",
        "`text` or `json`",
        "text",
        "`json`: one JSON object per log line (`time`, `level`, `logger`, `event` and the "
        "event's fields), gunicorn's access log too; redacted and escaped as `text` is",
        _choice("text", "json", fold=True),
    ),
    Setting(
        "METRICS",
        "choice",
        "`on` or `off`",
        "on",
        "record Prometheus metrics (`GET /metrics`, `METRICS_BIND`); `off` only to measure "
        "what recording costs (`make bench`)",
        _choice("on", "off", fold=True),
    ),
    Setting(
        "METRICS_TOKEN",
        "secret",
        "at least 16 characters, no spaces",
        "",
        "serves `GET /metrics` on the app's own address to `Authorization: Bearer "
        "<METRICS_TOKEN>` (unset: that path answers 404)",
        _metrics_token,
        secret=True,
        shown_default="(none: 404)",
    ),
    Setting(
        "METRICS_BIND",
        "address",
        "`HOST:PORT` (IPv6 in brackets), not `BIND`'s",
        "",
        "a listener of its own in gunicorn's master serving `GET /metrics` without a token "
        "(keep it on a private address)",
        _metrics_bind,
        shown_default="(none)",
    ),
    Setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "path",
        "an existing directory, one per instance",
        "",
        "where the workers' metric files live; emptied when gunicorn starts",
        _directory,
        shown_default="(a new private temporary directory per start)",
    ),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment, checked (SettingError names it, its value, the rule)."""
    return SETTINGS_BY_NAME[name].read(os.environ if env is None else env)


def settings_markdown() -> str:
    """README.md's configuration table, rendered from SETTINGS."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| variable | type | allowed | default | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = s.shown_default or f"`{s.default}`"
        rows.append(
            f"| `{s.name}` | {s.kind} | {cell(s.allowed)} | {cell(default)} | {cell(s.meaning)} |"
        )
    return "\n".join(rows) + "\n"


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build app.config from the environment plus overrides; refuse unsafe values at start-up.

    Every variable of SETTINGS is read and checked (the gunicorn ones too, so that one call
    checks everything before a worker forks); a bad one raises SettingError, one line.
    """
    env = os.environ if env is None else env
    s: dict[str, Any] = {setting.name: setting.read(env) for setting in SETTINGS}
    s.update(
        {
            "ENV": s.pop("GENMB_ENV"),
            "SECRET_KEY": s["SECRET_KEY"] or "",
            "REDIS_URL": s["REDIS_URL"] or "",
            "REDIS_SENTINEL_PASSWORD": s["REDIS_SENTINEL_PASSWORD"] or "",
            "PUBLIC_URL": s["PUBLIC_URL"] or "",
            "METRICS_TOKEN": s["METRICS_TOKEN"] or "",
            "BIND": s["BIND"] or f"127.0.0.1:{s['PORT']}",
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
    )
    s.update(overrides or {})
    development = s["ENV"] == "development" or bool(s["TESTING"])
    if s["ENV"] not in ("development", "production"):
        raise RuntimeError("GENMB_ENV must be 'development' or 'production'")
    if not s["SECRET_KEY"]:
        if not development:
            raise SettingError(
                "SECRET_KEY is not set: it is required in production (GENMB_ENV=development "
                "derives one); to use the server `make run` started, load its settings first: "
                "set -a; . var/run.env; set +a"
            )
        # Development only: derived, not random, so that every worker of one deployment
        # agrees on it (CSRF tokens made by one worker must verify on another).
        seed = f"genmb-development-secret:{s['REDIS_URL']}:{s['REDIS_KEY_PREFIX']}"
        s["SECRET_KEY"] = hashlib.sha256(seed.encode()).hexdigest()
    if not s["REDIS_URL"]:
        raise SettingError(
            "REDIS_URL is not set: use redis://host:port/db, unix:///path/to/redis.sock, "
            "or memory:// for the embedded single-process store"
        )
    try:
        target = redis_url.parse(s["REDIS_URL"])
    except redis_url.RedisUrlError as exc:
        raise SettingError(str(exc)) from None
    # Overrides (tests, embedding code) skip the table's parsing: the checks that matter
    # for them again, on the final values.
    if not 0 < s["REVOKE_WAIT_MS"] <= 60_000:
        raise SettingError(
            f"REVOKE_WAIT_MS must be 1..60000 milliseconds, got {s['REVOKE_WAIT_MS']}"
        )
    if s["TRUSTED_PROXY_COUNT"] < 0:
        raise SettingError("TRUSTED_PROXY_COUNT must be 0 or more")
    s["PUBLIC_URL"] = s["PUBLIC_URL"].strip().rstrip("/")
    if s["PUBLIC_URL"] and not _is_base_url(s["PUBLIC_URL"]):
        raise SettingError("PUBLIC_URL must be an http(s) URL such as https://genmb.example.com")
    s["SESSION_COOKIE_SECURE"] = not development
    if s["SESSION_COOKIE_SECURE"] and s["SESSION_COOKIE_NAME"] == "genmb_session":
        # __Host-: browsers take it only Secure, for Path=/ and without Domain, so neither a
        # sibling subdomain nor a plain-HTTP page can set or shadow the session cookie.
        s["SESSION_COOKIE_NAME"] = "__Host-genmb_session"
    for name in ("MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS"):
        s[name] = comma_list(s[name])
    if not s["MCP_ALLOWED_HOSTS"]:
        raise SettingError("MCP_ALLOWED_HOSTS must list at least one host (e.g. api.example.com)")
    for action in BILLABLE_ACTIONS.values():
        rate_limit_parts(s[action.limit_setting])
    s["GLOBAL_LIMIT"], s["GLOBAL_WINDOW_MS"] = rate_limit_parts(s["RATELIMIT_GLOBAL"])
    s["RESCUE_LIMIT"], s["RESCUE_WINDOW_MS"] = rate_limit_parts(s["RATELIMIT_SESSION_RESCUE"])
    if s["METRICS_BIND"] and parse_bind(s["METRICS_BIND"]) == parse_bind(s["BIND"]):
        raise SettingError(f"METRICS_BIND={s['METRICS_BIND']!r} is BIND's address: use another")
    uri, options = limits_storage(target, s["REDIS_TIMEOUT"], s["REDIS_SENTINEL_PASSWORD"])
    # The limiter's keys under REDIS_KEY_PREFIX too: limits names them
    # "<key_prefix>:LIMITER/<flask-limiter's prefix>/...", so the storage's prefix carries ours
    # and flask-limiter's own is left empty (docs/storage.md).
    if target.mode != "embedded":
        options["key_prefix"] = f"{s['REDIS_KEY_PREFIX']}:limiter"
    s.setdefault("RATELIMIT_STORAGE_URI", uri)
    s.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
    s.setdefault("RATELIMIT_KEY_PREFIX", "")
    return s


def _is_base_url(url: str) -> bool:
    """An absolute http(s) URL without query or fragment (the MCP URL is built on it)."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not (parts.query or parts.fragment)
    )


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
            url = "redis+unix://" + url[len("unix://") :]
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


def write_readme_table(readme: str = "README.md") -> None:
    """Rewrite README.md's configuration table from SETTINGS (between its two markers)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), readme)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(README_TABLE_BEGIN + "\n", 1)
    _, tail = rest.split(README_TABLE_END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + README_TABLE_BEGIN + "\n" + settings_markdown() + README_TABLE_END + tail)


README_TABLE_BEGIN = "<!-- settings table: generated from config.SETTINGS by `python config.py` -->"
README_TABLE_END = "<!-- end of settings table -->"

if __name__ == "__main__":
    write_readme_table()
