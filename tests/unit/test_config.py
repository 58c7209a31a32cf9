"""Issue #19, item 1: every setting has a type and a range, checked once at start-up, one line.

The table is config.SETTINGS. Each of its rows is tried here with a valid and an invalid value
(through config.load_settings, fast), the examples the issue found accepted are tried on the
real gunicorn (deploy/gunicorn.conf.py: one line on stderr, exit 2, no traceback), and
README.md's configuration table must be exactly the one rendered from the table.
"""

from __future__ import annotations

import os

import pytest

import config
from config import SETTINGS, SettingError, load_settings, rate_limit_parts
from deploy.processes import LOOPBACK, ROOT, free_port
from tests.helpers import flask_cli, gunicorn_run

BASE_ENV = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "s"}

# name -> (a valid value, an invalid value); None: the setting takes any text (secrets).
CASES: dict[str, tuple[str, str | None]] = {
    "GENMB_ENV": ("development", "staging"),
    "SECRET_KEY": ("a secret", " "),  # blank is "not set": refused in production
    "REDIS_URL": ("redis+sentinel://:pw@127.0.0.1:26379/genmb/0", "http://127.0.0.1:6379"),
    "REDIS_SENTINEL_PASSWORD": ("secret", None),
    "REVOKE_MIN_REPLICAS": ("2", "-1"),
    "REVOKE_WAIT_MS": ("60000", "0"),
    "REDIS_TIMEOUT": ("0.25", "0"),
    "REDIS_KEY_PREFIX": ("acme", ""),
    "TRUSTED_PROXY_COUNT": ("2", "-1"),
    "RATELIMIT_GLOBAL": ("100 per second", "0 per minute"),
    "RATELIMIT_SESSION_RESCUE": ("5 per 10 seconds", "30 per fortnight"),
    "RATELIMIT_CODEGEN": ("3 per hour", "lots"),
    "RATELIMIT_DEPLOY": ("1 per day", "5/minute;1/second"),
    "COST_CODEGEN": ("0", "-5"),
    "COST_DEPLOY": ("7", "1.5"),
    "CREDITS_FREE": ("0", "-1"),
    "CREDITS_PRO": ("25", "-100"),
    "CREDITS_BUSINESS": ("1000000000", "1000000001"),
    "MAX_KEYS_PER_USER": ("1", "0"),
    "KEY_USAGE": ("off", "sometimes"),
    "MAX_APPS_FREE": ("1", "0"),
    "MAX_APPS_PRO": ("5", "-1"),
    "MAX_APPS_BUSINESS": ("1000000", "many"),
    "MCP_ALLOWED_HOSTS": ("api.example.com,api.example.com:*", ","),
    "MCP_ALLOWED_ORIGINS": ("https://app.example.com", ","),
    "PUBLIC_URL": ("https://genmb.example.com/", "ftp://genmb.example.com"),
    "SESSION_LIFETIME_SECONDS": ("3600", "0"),
    "PASSWORD_SCRYPT_N": ("1024", "1000"),
    "SECURITY_LOG_MAX_EVENTS": ("5000", "0"),
    "SECURITY_LOG_MAX_DAYS": ("30", "3651"),
    "SECRET_SCANNING_KEYS_URL": ("http://127.0.0.1:9/keys?x=1", "ftp://example.com/keys"),
    "SECRET_SCANNING_RATELIMIT": ("10 per second", "lots"),
    "SECRET_SCANNING_MAX_BYTES": ("1024", "1023"),
    "PORT": ("8080", "70000"),
    "BIND": ("[::1]:8000", "8000"),
    "WORKERS": ("4", "0"),
    "GUNICORN_TIMEOUT": ("60", "abc"),
    "LOG_LEVEL": ("WARNING", "loud"),
    "ACCESS_LOG": ("-", "/no/such/directory/access.log"),
    "LOG_FORMAT": ("JSON", "xml"),
    "METRICS": ("off", "maybe"),
    "METRICS_TOKEN": ("a-long-metrics-token", "short"),
    "METRICS_BIND": ("127.0.0.1:9100", "unix:/tmp/metrics.sock"),
    "PROMETHEUS_MULTIPROC_DIR": ("/tmp", "/no/such/directory"),
}


def test_every_setting_has_cases():
    """A new row in config.SETTINGS needs a valid and an invalid value here."""
    assert [s.name for s in SETTINGS] == list(CASES)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_setting_valid_and_invalid(setting):
    """The valid value is taken; the invalid one stops start-up with one line naming the
    variable, the value (unless it is a secret) and what is allowed."""
    valid, invalid = CASES[setting.name]
    load_settings(env={**BASE_ENV, setting.name: valid})
    if invalid is None:
        return
    with pytest.raises(SettingError) as caught:
        load_settings(env={**BASE_ENV, setting.name: invalid})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(setting.name)
    if setting.secret:
        return
    assert "allowed" in message
    if invalid.strip():
        assert repr(invalid.strip()) in message


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_unset_takes_the_default(setting):
    """The documented default is a value the check accepts."""
    if setting.default:
        setting.parse(setting.default)


def test_secrets_never_echoed():
    """A bad secret is named, never shown."""
    with pytest.raises(SettingError) as caught:
        load_settings(env={**BASE_ENV, "REDIS_URL": "redis://:hunter2-secret@host:port/0"})
    assert "hunter2" not in str(caught.value)


def test_values_reach_the_config():
    """Parsed values (not text) reach app.config and the plan table."""
    s = load_settings(
        env={
            **BASE_ENV,
            "CREDITS_PRO": " 25 ",
            "WORKERS": "3",
            "LOG_LEVEL": "DEBUG",
            "PORT": "9000",
            "REDIS_TIMEOUT": "0.5",
        }
    )
    assert s["PLANS"]["pro"].monthly_credits == 25
    assert (s["WORKERS"], s["LOG_LEVEL"], s["REDIS_TIMEOUT"]) == (3, "debug", 0.5)
    assert s["BIND"] == "127.0.0.1:9000"  # BIND's default follows PORT


def test_key_prefix_reaches_the_limiter():
    """The limiter's storage names its keys under REDIS_KEY_PREFIX (issue #19, item 4)."""
    s = load_settings(env={**BASE_ENV, "REDIS_KEY_PREFIX": "acme"})
    assert s["RATELIMIT_STORAGE_OPTIONS"]["key_prefix"] == "acme:limiter"
    assert s["RATELIMIT_KEY_PREFIX"] == ""


def test_readme_table_is_rendered_from_the_settings():
    """README.md's configuration table is exactly config.settings_markdown() (regenerate it
    with `.venv/bin/python config.py`)."""
    readme = (ROOT / "README.md").read_text()
    _, rest = readme.split(config.README_TABLE_BEGIN + "\n", 1)
    table, _ = rest.split(config.README_TABLE_END, 1)
    assert table == config.settings_markdown()


# ---- the real gunicorn ------------------------------------------------------------------

# What the issue found accepted, and the two that ended in a bare ValueError.
GUNICORN_CASES = [
    ("PASSWORD_SCRYPT_N", "1000"),
    ("COST_CODEGEN", "-5"),
    ("REDIS_TIMEOUT", "-1"),
    ("WORKERS", "0"),
    ("WORKERS", "abc"),
    ("GUNICORN_TIMEOUT", "abc"),
    ("LOG_LEVEL", "loud"),
    ("MCP_ALLOWED_ORIGINS", ","),
    ("REDIS_KEY_PREFIX", ""),
    ("SESSION_LIFETIME_SECONDS", "-5"),
]


@pytest.mark.parametrize(("name", "value"), GUNICORN_CASES)
def test_gunicorn_refuses_a_bad_setting_with_one_line(name, value, tmp_path):
    """gunicorn exits 2 before any worker forks, with one line on stderr and no traceback."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "GENMB_ENV": "development",
        "BIND": f"{LOOPBACK}:{port}",
        name: value,
    }
    done = gunicorn_run(env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"genmb: cannot start: {name}"), lines
    assert "Traceback" not in done.stderr + done.stdout
    assert "Booting worker" not in done.stderr + done.stdout


def test_flask_cli_refuses_a_bad_setting_with_one_line():
    """The operator CLI too: PASSWORD_SCRYPT_N=1000 used to end every `users create` in a
    traceback ("n must be a power of 2"); now one line, before anything is written."""
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "GENMB_ENV": "development",
        "PASSWORD_SCRYPT_N": "1000",
    }
    done = flask_cli(env, "users", "create", "a@example.test", "--password", "long enough")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: PASSWORD_SCRYPT_N='1000' is not allowed: allowed is a power of 2 from 1024 "
        "to 131072"
    ]


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if CASES[s.name][1] is not None], ids=lambda s: s.name
)
def test_flask_cli_refuses_every_bad_setting_with_one_line(setting):
    """Every row's invalid value, through the operator CLI as typed: exit 1, one "Error:" line
    naming the variable, no traceback. (PROMETHEUS_MULTIPROC_DIR=/no/such/directory used to
    end in an open() traceback: metrics.py creates its metrics, and prometheus_client opens
    their files there, as the app is imported, before create_app() checks the settings.)"""
    env = {"PATH": os.environ["PATH"], **BASE_ENV, setting.name: CASES[setting.name][1]}
    done = flask_cli(env, "users", "create", "a@example.test", "--password", "long enough")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: {setting.name}"), lines


# ---- load_settings: numbers, secrets, environments, limits ---------------------------
@pytest.mark.parametrize(
    "name",
    [
        "TRUSTED_PROXY_COUNT",
        "MAX_KEYS_PER_USER",
        "COST_CODEGEN",
        "CREDITS_PRO",
        "SESSION_LIFETIME_SECONDS",
    ],
)
@pytest.mark.parametrize("garbage", ["two", "1.5", "5x"])
def test_bad_integer_settings_fail_loudly(name, garbage):
    """A non-integer integer setting stops start-up with an error naming the setting."""
    with pytest.raises(RuntimeError, match=name):
        load_settings(env={**BASE_ENV, name: garbage})


def test_bad_number_setting_fails_loudly():
    """REDIS_TIMEOUT must be a number."""
    with pytest.raises(RuntimeError, match="REDIS_TIMEOUT"):
        load_settings(env={**BASE_ENV, "REDIS_TIMEOUT": "soon"})


def test_integer_settings_are_read():
    """Integer settings from the environment reach the config and the plan table."""
    s = load_settings(
        env={**BASE_ENV, "CREDITS_PRO": " 25 ", "TRUSTED_PROXY_COUNT": "2", "REDIS_TIMEOUT": "0.5"}
    )
    assert s["PLANS"]["pro"].monthly_credits == 25
    assert s["TRUSTED_PROXY_COUNT"] == 2
    assert s["REDIS_TIMEOUT"] == 0.5


def test_missing_secret_key_fails_in_production():
    """Production (the default) refuses to start without SECRET_KEY."""
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        load_settings(env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        load_settings(env={"REDIS_URL": "redis://127.0.0.1:1/0", "GENMB_ENV": "production"})


def test_missing_secret_key_is_derived_in_development():
    """Development derives a SECRET_KEY that every worker of one deployment agrees on."""
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "GENMB_ENV": "development"}
    first, second = load_settings(env=env), load_settings(env=env)
    assert len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] == second["SECRET_KEY"]  # two workers, one secret
    other = load_settings(env={**env, "REDIS_URL": "redis://127.0.0.1:2/0"})
    assert other["SECRET_KEY"] != first["SECRET_KEY"]


@pytest.mark.parametrize("text", ["0 per minute", "200/minute;10/second", "lots"])
def test_bad_global_limits_fail_at_start(text):
    """A zero limit or several limits in RATELIMIT_GLOBAL are refused, not half-applied."""
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "s", "RATELIMIT_GLOBAL": text}
    with pytest.raises(RuntimeError, match="limit"):
        load_settings(env=env)


def test_missing_redis_url_fails():
    """Without REDIS_URL the app refuses to start, even in development."""
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        load_settings(env={"SECRET_KEY": "s"})
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        load_settings(env={"GENMB_ENV": "development"})


def test_unknown_environment_fails():
    """GENMB_ENV accepts only development or production."""
    with pytest.raises(RuntimeError, match="GENMB_ENV"):
        load_settings(env={**BASE_ENV, "GENMB_ENV": "staging"})


def test_negative_proxy_count_fails():
    """TRUSTED_PROXY_COUNT below zero is refused."""
    with pytest.raises(RuntimeError, match="TRUSTED_PROXY_COUNT"):
        load_settings(env={**BASE_ENV, "TRUSTED_PROXY_COUNT": "-1"})


def test_secure_cookie_follows_environment():
    """Session cookies are Secure in production, not in development or testing."""
    assert load_settings(env=BASE_ENV)["SESSION_COOKIE_SECURE"] is True
    assert (
        load_settings(env={**BASE_ENV, "GENMB_ENV": "development"})["SESSION_COOKIE_SECURE"]
        is False
    )
    assert load_settings({"TESTING": True}, env=BASE_ENV)["SESSION_COOKIE_SECURE"] is False


def test_global_rate_limit_default_and_parsing():
    """RATELIMIT_GLOBAL defaults to 200 per minute, i.e. (200, 60000 ms)."""
    s = load_settings(env=BASE_ENV)
    assert (s["GLOBAL_LIMIT"], s["GLOBAL_WINDOW_MS"]) == (200, 60_000)
    assert rate_limit_parts("200 per minute") == (200, 60_000)
    assert rate_limit_parts("10/second") == (10, 1_000)
    assert rate_limit_parts("1000 per hour") == (1000, 3_600_000)
    s = load_settings(env={**BASE_ENV, "RATELIMIT_GLOBAL": "5 per second"})
    assert (s["GLOBAL_LIMIT"], s["GLOBAL_WINDOW_MS"]) == (5, 1_000)


def test_bad_global_rate_limit_fails():
    """An unparseable RATELIMIT_GLOBAL stops start-up."""
    with pytest.raises(RuntimeError, match="rate limit"):
        load_settings(env={**BASE_ENV, "RATELIMIT_GLOBAL": "lots"})


def test_overrides_win_over_environment():
    """Explicit overrides replace what the environment says."""
    s = load_settings(
        {"MAX_KEYS_PER_USER": 2, "REDIS_URL": "memory://"},
        env={**BASE_ENV, "MAX_KEYS_PER_USER": "9"},
    )
    assert s["MAX_KEYS_PER_USER"] == 2
    assert s["REDIS_URL"] == "memory://"
