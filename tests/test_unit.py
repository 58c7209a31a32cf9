"""Fast unit tier: no redis-server. Credentials, log redaction, settings, schemas, passwords,
the clock, and the whole key lifecycle on the embedded store (Lua scripts on fakeredis)."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import request
from marshmallow import ValidationError

from config import load_settings, rate_limit_parts
from extensions import STORAGE_EXTENSION
from logs import KeyRedactingFilter, install_filter, redact
from schemas.keys import KeyCreateSchema
from security.credentials import MCP_HEADER, presented
from security.passwords import hash_password, verify_password
from store import apikeys, users
from store.clock import iso, start_of_next_month
from store.errors import KeyLimitReached, PlanRequired
from tests.helpers import FAST_HASH, PASSWORD

COOKIE = "genmb_session"


def a_key() -> str:
    """A freshly generated, well-formed raw key."""
    return apikeys.generate()


def classify(app, headers=None, query_string=None, cookie=None):
    """Run security.credentials.presented() on a synthetic request."""
    if cookie is not None:
        headers = {**(headers or {}), "Cookie": f"{COOKIE}={cookie}"}
    with app.test_request_context("/api/me", headers=headers or {}, query_string=query_string):
        return presented(request, app.config["SESSION_COOKIE_NAME"])


# ---- credentials parsing --------------------------------------------------------------


def test_generated_key_has_contract_shape():
    """A generated key is genmb_sk_ plus 32 URL-safe characters and counts as well-formed."""
    key = a_key()
    assert key.startswith("genmb_sk_")
    assert len(key) == len("genmb_sk_") + 32
    assert apikeys.is_well_formed(key)
    assert key != a_key()


def test_mcp_header_wins_over_authorization(fake_app):
    """With both headers present, X-MCP-API-Key is the credential."""
    mcp, bearer = a_key(), a_key()
    got = classify(fake_app, {MCP_HEADER: mcp, "Authorization": f"Bearer {bearer}"})
    assert (got.kind, got.secret) == ("key", mcp)


def test_malformed_mcp_header_still_wins_over_valid_bearer(fake_app):
    """A present-but-malformed X-MCP-API-Key is not silently replaced by Authorization."""
    got = classify(
        fake_app, {MCP_HEADER: "genmb_sk_tooshort", "Authorization": f"Bearer {a_key()}"}
    )
    assert got.kind == "malformed"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(fake_app, scheme):
    """Authorization's scheme matches Bearer in any letter case."""
    key = a_key()
    got = classify(fake_app, {"Authorization": f"{scheme} {key}"})
    assert (got.kind, got.secret) == ("key", key)


def test_surrounding_whitespace_is_ignored(fake_app):
    """Whitespace around the key in either header is not part of the key."""
    key = a_key()
    assert classify(fake_app, {MCP_HEADER: f"  {key}  "}).secret == key
    assert classify(fake_app, {"Authorization": f"Bearer   {key}  "}).secret == key


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_mcp_header_counts_as_absent(fake_app, blank):
    """A blank X-MCP-API-Key falls through to Authorization, or to nothing."""
    key = a_key()
    assert classify(fake_app, {MCP_HEADER: blank}).kind == "none"
    got = classify(fake_app, {MCP_HEADER: blank, "Authorization": f"Bearer {key}"})
    assert (got.kind, got.secret) == ("key", key)


@pytest.mark.parametrize("authorization", ["", "   ", "Bearer", "Bearer    "])
def test_blank_bearer_counts_as_absent(fake_app, authorization):
    """An empty Authorization header or an empty Bearer token is no credential at all."""
    assert classify(fake_app, {"Authorization": authorization}).kind == "none"


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Digest", "ApiKey"])
def test_non_bearer_scheme_counts_as_absent(fake_app, scheme):
    """Another scheme is not a key (even with a valid key after it); the cookie still counts."""
    header = {"Authorization": f"{scheme} {a_key()}"}
    assert classify(fake_app, header).kind == "none"
    got = classify(fake_app, header, cookie="session-token")
    assert (got.kind, got.secret) == ("session", "session-token")


@pytest.mark.parametrize(
    "bad",
    [
        "genmb_sk_short",
        "not-a-key",
        "genmb_sk_" + "a" * 31,
        "genmb_sk_" + "a" * 33,
        "genmb_sk_" + "a" * 31 + "!",
        "GENMB_SK_" + "a" * 32,
        "sk_" + "a" * 38,
    ],
)
def test_malformed_key_is_classified_malformed(fake_app, bad):
    """A present credential that is not key-shaped is "malformed", from either header."""
    assert classify(fake_app, {"Authorization": f"Bearer {bad}"}).kind == "malformed"
    assert classify(fake_app, {MCP_HEADER: bad}).kind == "malformed"
    assert classify(fake_app, {MCP_HEADER: bad}).lookup() is None


@pytest.mark.parametrize("param", ["api_key", "key", "access_token", "X-MCP-API-Key"])
def test_query_string_key_is_ignored(fake_app, param):
    """A key in the query string is never read."""
    assert classify(fake_app, query_string={param: a_key()}).kind == "none"


def test_key_header_wins_over_session_cookie(fake_app):
    """A request carrying both a key and a session cookie is authenticated by the key."""
    key = a_key()
    got = classify(fake_app, {"Authorization": f"Bearer {key}"}, cookie="session-token")
    assert (got.kind, got.secret) == ("key", key)


def test_lookup_uses_sha256_digest_and_prefix_is_display_only(fake_app):
    """The gate looks keys up by SHA-256 hex digest; only genmb_sk_ + 4 chars is loggable."""
    key = a_key()
    got = classify(fake_app, {MCP_HEADER: key})
    assert got.lookup() == ("key", hashlib.sha256(key.encode()).hexdigest())
    assert got.display_prefix == key[:13]
    session = classify(fake_app, cookie="tok")
    assert session.lookup() == ("session", hashlib.sha256(b"tok").hexdigest())
    assert session.display_prefix == ""


# ---- log redaction --------------------------------------------------------------------


def test_redact_keeps_display_prefix_alone():
    """genmb_sk_ plus exactly 4 characters is a display prefix and survives redaction."""
    text = "revoked prefix=genmb_sk_ABCD user=u1"
    assert redact(text) == text


@pytest.mark.parametrize("tail", ["E", "E-", "EFGH_ijkl", "x" * 28])
def test_redact_removes_anything_longer_than_prefix(tail):
    """Any key-shaped run longer than the display prefix is cut back to the prefix."""
    out = redact(f"got genmb_sk_ABCD{tail} here")
    assert f"genmb_sk_ABCD{tail}" not in out
    assert "genmb_sk_ABCD" in out
    assert out.endswith(" here")


def test_redact_handles_several_keys_in_one_string():
    """Every key in a string is redacted, not just the first."""
    first, second = a_key(), a_key()
    out = redact(f"{first},{second}")
    assert first not in out and second not in out
    assert first[:13] in out and second[:13] in out


@pytest.fixture
def captured():
    """A private logger with the redacting filter, writing formatted lines to a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_filter(logger)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_redacts_message(captured):
    """A key inside the message text never reaches the output."""
    logger, stream = captured
    key = a_key()
    logger.warning(f"raw {key}")
    assert key not in stream.getvalue()
    assert key[:13] in stream.getvalue()


def test_filter_redacts_percent_args(captured):
    """A key passed as a %-argument is redacted after formatting."""
    logger, stream = captured
    key = a_key()
    logger.info("presented %s from %s", key, "1.2.3.4")
    out = stream.getvalue()
    assert key not in out
    assert "from 1.2.3.4" in out


def test_filter_redacts_dict_args(captured):
    """A key passed in a mapping argument (%(name)s style) is redacted."""
    logger, stream = captured
    key = a_key()
    logger.info("key=%(key)s ip=%(ip)s", {"key": key, "ip": "1.2.3.4"})
    out = stream.getvalue()
    assert key not in out
    assert "ip=1.2.3.4" in out


def test_filter_redacts_exception_traceback(captured):
    """A key in an exception message is redacted from the logged traceback."""
    logger, stream = captured
    key = a_key()
    try:
        raise ValueError(f"could not use {key}")
    except ValueError:
        logger.exception("request failed")
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out
    assert key not in out
    assert key[:13] in out


def test_filter_redacts_stack_info():
    """A key in a record's stack_info is redacted."""
    key = a_key()
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "msg",
        None,
        None,
        sinfo=f"Stack (most recent call last):\n  use({key!r})",
    )
    assert KeyRedactingFilter().filter(record) is True
    assert key not in record.getMessage()  # the stack is folded into the one line
    assert key[:13] in record.getMessage() and record.stack_info is None


def test_filter_redacts_preformatted_exc_text():
    """A record that already carries exc_text (formatted elsewhere) is redacted too."""
    key = a_key()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "msg", None, None)
    record.exc_text = f"Traceback...\nRuntimeError: {key}"
    KeyRedactingFilter().filter(record)
    assert key not in record.getMessage() and "RuntimeError" in record.getMessage()
    assert record.exc_text is None  # folded into the one line


def test_filter_survives_broken_format_string(captured):
    """A record whose args do not fit its format string is still logged, still redacted."""
    logger, stream = captured
    key = a_key()
    logger.info("%d items", key)
    out = stream.getvalue()
    assert out.strip()
    assert key not in out


def test_handler_filter_covers_propagated_child_records():
    """Records from a child logger, reaching the handler by propagation, are redacted."""
    stream = io.StringIO()
    parent = logging.getLogger(f"test.parent.{uuid.uuid4().hex}")
    parent.propagate = False
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    install_filter(parent)
    install_filter(parent)  # idempotent
    assert sum(isinstance(f, KeyRedactingFilter) for f in handler.filters) == 1
    child = logging.getLogger(parent.name + ".child")
    child.setLevel(logging.INFO)
    key = a_key()
    try:
        child.info("child saw %s", key)
    finally:
        parent.removeHandler(handler)
    assert "child saw" in stream.getvalue()
    assert key not in stream.getvalue()


# ---- settings -------------------------------------------------------------------------

BASE_ENV = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "s"}


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


# ---- schemas --------------------------------------------------------------------------


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


# ---- passwords ------------------------------------------------------------------------


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


# ---- clock ----------------------------------------------------------------------------


def test_start_of_next_month_december_rolls_year():
    """December's credits reset at midnight UTC on 1 January of the next year."""
    moment = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert start_of_next_month(moment) == datetime(2026, 1, 1, tzinfo=UTC)
    assert start_of_next_month(datetime(2025, 12, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, tzinfo=UTC
    )


def test_start_of_next_month_ordinary_month():
    """A mid-year moment resets on the first of the following month."""
    assert start_of_next_month(datetime(2024, 2, 29, 12, tzinfo=UTC)) == datetime(
        2024, 3, 1, tzinfo=UTC
    )


def test_start_of_next_month_converts_to_utc_first():
    """The month is the UTC month: 20:00 on 31 Dec at UTC-5 is already January in UTC."""
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2025, 12, 31, 20, 0, tzinfo=eastern)
    assert start_of_next_month(moment) == datetime(2026, 2, 1, tzinfo=UTC)


def test_iso_is_utc_with_z_and_milliseconds():
    """Timestamps render as ISO 8601 UTC with milliseconds and a Z suffix."""
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2025, 6, 1, 2, 3, 4, 567891, tzinfo=plus_two)) == "2025-06-01T00:03:04.567Z"


# ---- the whole key lifecycle on the embedded store -----------------------------------


def test_key_lifecycle_on_fakeredis(fake_app):
    """Create, list, use, revoke a key with the Lua scripts running on fakeredis."""
    storage = fake_app.extensions[STORAGE_EXTENSION]
    user = users.create(storage, "life@example.test", PASSWORD, "pro", FAST_HASH)
    web = fake_app.test_client()
    login = web.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    csrf = {"X-CSRF-Token": login.json["csrf_token"]}

    created = web.post("/api/keys", json={"name": " lifecycle "}, headers=csrf)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    raw, key_id = created.json["key"], created.json["id"]
    assert apikeys.is_well_formed(raw)
    assert created.json["name"] == "lifecycle"
    assert created.json["prefix"] == raw[:13]
    assert created.json["last_used_at"] is None

    listed = web.get("/api/keys").json["keys"]
    assert [k["id"] for k in listed] == [key_id]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None

    api = fake_app.test_client()
    me = api.get("/api/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200
    assert me.json["auth"] == {"method": "api_key", "key_id": key_id}
    assert me.json["id"] == user.id
    used_at = web.get("/api/keys").json["keys"][0]["last_used_at"]
    assert used_at is not None and used_at.endswith("Z")

    # Redis holds only the digest, never the raw key or its random part.
    everything = []
    for name in storage.redis.keys("*"):
        everything.append(name)
        kind = storage.redis.type(name)
        if kind == "hash":
            everything.extend(storage.redis.hgetall(name).values())
        elif kind == "string":
            everything.append(storage.redis.get(name))
    blob = "\n".join(map(str, everything))
    assert raw not in blob and raw[len("genmb_sk_") :] not in blob
    assert apikeys.digest(raw) in blob

    assert web.delete(f"/api/keys/{key_id}", headers=csrf).status_code == 204
    gone = api.get("/api/me", headers={MCP_HEADER: raw})
    assert gone.status_code == 401
    assert gone.json["error"]["code"] == "invalid_api_key"
    assert 'error="invalid_token"' in gone.headers["WWW-Authenticate"]
    assert web.get("/api/keys").json["keys"] == []
    # Repeating a revoke is safe (CONTRACT §11); an id the user never held is 404.
    assert web.delete(f"/api/keys/{key_id}", headers=csrf).status_code == 204
    assert web.delete("/api/keys/key_0123456789abcdef", headers=csrf).status_code == 404


def test_key_cap_and_plan_check_on_fakeredis(fake_app):
    """The create_key script enforces the per-user cap and the plan on fakeredis too."""
    storage = fake_app.extensions[STORAGE_EXTENSION]
    cap = fake_app.config["MAX_KEYS_PER_USER"]
    pro = users.create(storage, "cap@example.test", PASSWORD, "pro", FAST_HASH)
    free = users.create(storage, "free@example.test", PASSWORD, "free", FAST_HASH)
    plans = ["pro", "business"]
    for i in range(cap):
        apikeys.create(storage, pro.id, f"k{i}", cap, plans)
    with pytest.raises(KeyLimitReached):
        apikeys.create(storage, pro.id, "one too many", cap, plans)
    assert len(apikeys.list_for_user(storage, pro.id)) == cap
    with pytest.raises(PlanRequired):
        apikeys.create(storage, free.id, "free key", cap, plans)
    assert apikeys.list_for_user(storage, free.id) == []
