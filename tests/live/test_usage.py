"""Issue #14, item 2: per-key usage, counted in the gate's one script (README, "The API";
docs/storage.md).

In-process tests run on every Redis topology; the day arithmetic of lib/usage.lua is checked
on a controlled clock (the script's day function fed chosen instants), and the reading side
with a controlled store clock; the exact count under concurrency runs on gunicorn's 4 workers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from store import apikeys, clock, users
from store.client import LUA_DIR
from store.names import KeyNames
from tests.helpers import LiveSession, create_key, login, make_app


def today_utc() -> str:
    """Today's date, UTC, as the usage series names it."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def use(app, raw: str, times: int, path: str = "/api/me") -> Counter:
    """Send `times` requests with a key; the status codes."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw}"}
    return Counter(client.get(path, headers=headers).status_code for _ in range(times))


def listed(client) -> dict[str, dict]:
    """GET /api/keys, by key id."""
    return {k["id"]: k for k in client.get("/api/keys").json["keys"]}


def test_requests_are_counted_per_key_and_day(pro, app):
    """requests_today and requests_30d count each key's requests exactly; the usage series
    has one entry per day, oldest first, today last."""
    client, csrf, _ = pro
    a, b = create_key(client, csrf, "a"), create_key(client, csrf, "b")
    assert use(app, a["key"], 7) == Counter({200: 7})
    assert use(app, b["key"], 3, "/api/apps") == Counter({200: 3})
    keys = listed(client)
    assert (keys[a["id"]]["requests_today"], keys[a["id"]]["requests_30d"]) == (7, 7)
    assert (keys[b["id"]]["requests_today"], keys[b["id"]]["requests_30d"]) == (3, 3)
    response = client.get(f"/api/keys/{a['id']}/usage")
    assert response.status_code == 200
    body = response.json
    assert body["key_id"] == a["id"] and len(body["days"]) == 30
    assert body["days"][-1] == {
        "date": today_utc(),
        "admitted": 7,
        "rate_limited": 0,
        "plan_refused": 0,
    }
    assert all(d == {**d, "admitted": 0} for d in body["days"][:-1])
    dates = [d["date"] for d in body["days"]]
    assert dates == sorted(dates) and len(set(dates)) == 30
    week = client.get(f"/api/keys/{a['id']}/usage?days=7").json["days"]
    assert len(week) == 7 and week[-1]["admitted"] == 7
    # Sessions and unknown keys are not counted anywhere.
    client.get("/api/me")
    assert listed(client)[a["id"]]["requests_today"] == 7


def test_rate_limited_and_plan_refused_are_counted_by_outcome(redis_url, make_user):
    """The window's refusals (429) and the plan's (403) are counted apart from admissions, on
    every topology (on Cluster the 429 is moved to rate limited after the credential script
    counted it: docs/storage.md)."""
    app = make_app(redis_url, RATELIMIT_GLOBAL="6 per minute")
    owner = make_user("pro")
    session = app.test_client()
    csrf = login(session, owner.email)  # 1 of the 6
    key = create_key(session, csrf)  # 2 of the 6
    codes = use(app, key["key"], 6)
    assert codes == Counter({200: 4, 429: 2})
    # This client's window is full too: read through an app with the default limit.
    assert session.get(f"/api/keys/{key['id']}/usage?days=1").status_code == 429
    reader = make_app(redis_url).test_client()
    login(reader, owner.email)
    (today,) = reader.get(f"/api/keys/{key['id']}/usage?days=1").json["days"]
    assert (today["admitted"], today["rate_limited"]) == (4, 2)
    assert listed(reader)[key["id"]]["requests_30d"] == 6


def test_plan_refusals_are_counted(pro, app, storage):
    """A downgraded account's key is refused 403 plan_required: counted as plan_refused."""
    client, csrf, user = pro
    key = create_key(client, csrf)
    use(app, key["key"], 2)
    users.set_plan(storage, user.email, "free")
    assert use(app, key["key"], 3) == Counter({403: 3})
    (today,) = client.get(f"/api/keys/{key['id']}/usage?days=1").json["days"]
    assert (today["admitted"], today["rate_limited"], today["plan_refused"]) == (2, 0, 3)
    assert listed(client)[key["id"]]["requests_30d"] == 5


def test_rolled_keys_are_counted_apart_and_expired_ones_not_at_all(pro, app):
    """Old and new key of a roll each have their own counters; an old key refused after its
    overlap (or a revoked key) counts nothing more."""
    client, csrf, _ = pro
    old = create_key(client, csrf)
    use(app, old["key"], 2)
    new = client.post(
        f"/api/keys/{old['id']}/roll", json={"overlap_seconds": 60}, headers={"X-CSRF-Token": csrf}
    ).json
    use(app, old["key"], 1)
    use(app, new["key"], 4)
    keys = listed(client)
    assert keys[old["id"]]["requests_30d"] == 3 and keys[new["id"]]["requests_30d"] == 4
    assert client.get(f"/api/keys/{old['id']}/usage?days=1").json["days"][0]["admitted"] == 3
    client.delete(f"/api/keys/{old['id']}", headers={"X-CSRF-Token": csrf})
    assert use(app, old["key"], 2) == Counter({401: 2})
    assert client.get(f"/api/keys/{old['id']}/usage").status_code == 404


@pytest.mark.parametrize("query", ["days=0", "days=91", "days=x", "days=1.5"])
def test_bad_usage_queries_are_refused(pro, query):
    """?days= must be an integer 1-90: anything else is a validation error."""
    client, csrf, _ = pro
    key = create_key(client, csrf)
    response = client.get(f"/api/keys/{key['id']}/usage?{query}")
    assert response.status_code in (400, 422)
    assert response.json["error"]["code"] == "validation_error"
    assert len(client.get(f"/api/keys/{key['id']}/usage?days=90").json["days"]) == 90


def test_usage_is_the_owners_only_and_needs_a_session(pro, app, make_user):
    """Another user's or an unknown key: 404; with an API key: 403 session_required."""
    client, csrf, _ = pro
    key = create_key(client, csrf)
    other = app.test_client()
    login(other, make_user("pro").email)
    assert other.get(f"/api/keys/{key['id']}/usage").status_code == 404
    assert other.get("/api/keys/key_0000000000000000/usage").status_code == 404
    with_key = app.test_client().get(
        f"/api/keys/{key['id']}/usage", headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert with_key.status_code == 403 and with_key.json["error"]["code"] == "session_required"


def test_counting_off_counts_nothing(redis_url, make_user, rdb):
    """KEY_USAGE=off (the bench's comparison): the gate writes no usage hash."""
    app = make_app(redis_url, KEY_USAGE="off")
    user = make_user("pro")
    client = app.test_client()
    key = create_key(client, login(client, user.email))
    assert use(app, key["key"], 3) == Counter({200: 3})
    digest = hashlib.sha256(key["key"].encode()).hexdigest()
    assert not rdb.exists(KeyNames().key_usage(user.id, digest))
    assert listed(client)[key["id"]]["requests_30d"] == 0


def test_usage_hash_has_a_ttl_and_day_fields(pro, app, rdb):
    """genmb:user:{U}:usage:<digest>, fields <YYYYMMDD>:a, a TTL of 91 days."""
    client, csrf, user = pro
    key = create_key(client, csrf)
    use(app, key["key"], 2)
    name = KeyNames().key_usage(user.id, hashlib.sha256(key["key"].encode()).hexdigest())
    seconds, _ = rdb.time()
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d")
    assert rdb.hgetall(name) == {f"{day}:a": "2"}
    assert 91 * 86400 - 60 < rdb.ttl(name) <= 91 * 86400


# ---- the day, on a controlled clock ----------------------------------------------------


def usage_lua(rdb, body: str, keys: list[str], args: list[object]):
    """Run lib/usage.lua's functions with a test body (the same source the gate loads)."""
    source = (LUA_DIR / "lib" / "usage.lua").read_text() + "\n" + body
    return rdb.eval(source, len(keys), *keys, *args)


INSTANTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2024, 2, 28, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC),
    datetime(2100, 3, 1, 12, tzinfo=UTC),
]


def test_lua_utc_day_matches_the_calendar(rdb):
    """utc_day (civil date from epoch seconds) agrees with Python's calendar, including leap
    days, year ends and 2100 (not a leap year), and across a sweep of 3 years."""
    sweep = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(3800)]
    for moment in [*INSTANTS, *sweep]:
        seconds = int(moment.timestamp())
        got = usage_lua(rdb, "return utc_day(tonumber(ARGV[1]))", [], [seconds])
        assert got == moment.strftime("%Y%m%d"), moment


def test_day_rollover_on_a_controlled_clock(rdb, storage, make_user, monkeypatch):
    """A request at 23:59:59 UTC and one at 00:00:00 count on two days; the API's today and
    30 days follow the clock across midnight and out of the 30-day window."""
    user = make_user("pro")
    name = KeyNames().key_usage(user.id, "d" * 64)
    midnight = datetime(2026, 3, 1, tzinfo=UTC)
    count = "count_usage(KEYS[1], ARGV[2], tonumber(ARGV[1])) return redis.call('HGETALL', KEYS[1])"
    usage_lua(rdb, count, [name], [int(midnight.timestamp()) - 1, "a"])
    usage_lua(rdb, count, [name], [int(midnight.timestamp()) - 1, "l"])
    usage_lua(rdb, count, [name], [int(midnight.timestamp()), "a"])
    usage_lua(rdb, count, [name], [int(midnight.timestamp()), "a"])
    assert rdb.hgetall(name) == {"20260228:a": "1", "20260228:l": "1", "20260301:a": "2"}
    counters = rdb.hgetall(name)
    assert apikeys.usage_totals(counters, midnight - timedelta(seconds=1)) == (2, 2)
    assert apikeys.usage_totals(counters, midnight) == (2, 4)
    assert apikeys.usage_totals(counters, midnight + timedelta(days=29)) == (0, 2)
    assert apikeys.usage_totals(counters, midnight + timedelta(days=30)) == (0, 0)
    # The series endpoint's reading follows the same controlled clock.
    monkeypatch.setattr(clock, "utcnow", lambda: midnight + timedelta(hours=5))
    digests = {"key_00000000000000aa": "d" * 64}
    monkeypatch.setattr(apikeys, "_digest_of", lambda s, u, k: digests.get(k))
    series = apikeys.usage(storage, user.id, "key_00000000000000aa", 2)
    assert series == [
        {"date": "2026-02-28", "admitted": 1, "rate_limited": 1, "plan_refused": 0},
        {"date": "2026-03-01", "admitted": 2, "rate_limited": 0, "plan_refused": 0},
    ]


def test_fields_older_than_91_days_are_dropped(rdb, make_user):
    """A key used every day for 100 days holds at most 91 days of fields: the first count
    of a day prunes once the hash is past 3 x 91 fields."""
    user = make_user("pro")
    name = KeyNames().key_usage(user.id, "e" * 64)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    body = (
        "for day = 0, 99 do for _, o in ipairs({'a', 'l', 'p'}) do "
        "count_usage(KEYS[1], o, tonumber(ARGV[1]) + day * 86400) end end "
        "return redis.call('HLEN', KEYS[1])"
    )
    assert usage_lua(rdb, body, [name], [start]) <= 3 * 91
    days = {field[:8] for field in rdb.hkeys(name)}
    last = datetime.fromtimestamp(start + 99 * 86400, UTC)
    assert max(days) == last.strftime("%Y%m%d")
    assert min(days) >= (last - timedelta(days=91)).strftime("%Y%m%d")


def test_a_key_with_one_outcome_keeps_91_days_too(rdb, make_user):
    """The first count of a day drops every field older than 91 days (docs/storage.md), not
    only once the hash is past 3 x 91 fields: a key with admitted requests only, used every
    day for 120 days, keeps 91 days; one used on days 0, 50 and 100 keeps days 50 and 100."""
    user = make_user("pro")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    daily = KeyNames().key_usage(user.id, "f" * 64)
    body = (
        "for day = 0, 119 do count_usage(KEYS[1], 'a', tonumber(ARGV[1]) + day * 86400) end "
        "return redis.call('HLEN', KEYS[1])"
    )
    assert usage_lua(rdb, body, [daily], [int(start.timestamp())]) == 91
    last = start + timedelta(days=119)
    assert min(rdb.hkeys(daily)) == f"{last - timedelta(days=90):%Y%m%d}:a"
    sparse = KeyNames().key_usage(user.id, "0" * 64)
    body = (
        "for _, day in ipairs({0, 50, 100}) do "
        "count_usage(KEYS[1], 'a', tonumber(ARGV[1]) + day * 86400) end "
        "return redis.call('HKEYS', KEYS[1])"
    )
    kept = usage_lua(rdb, body, [sparse], [int(start.timestamp())])
    assert sorted(kept) == [f"{start + timedelta(days=d):%Y%m%d}:a" for d in (50, 100)]


def test_a_recount_as_refused_keeps_the_ttl_and_the_day_walked_once(rdb, make_user):
    """Cluster's recount (usage_refused.lua) moves a count to rate limited without deleting
    the field it came from: a key's first request of the day refused keeps the hash's TTL,
    and the next admitted request does not walk the hash again (one walk per day and
    outcome, docs/storage.md)."""
    user = make_user("pro")
    usage = KeyNames().key_usage(user.id, "e" * 64)
    now = int(datetime.now(UTC).timestamp())
    counted = usage_lua(rdb, "return count_usage(KEYS[1], 'a', tonumber(ARGV[1]))", [usage], [now])
    recount = (LUA_DIR / "usage_refused.lua").read_text()
    assert rdb.eval(recount, 1, usage, counted) == 1
    day = counted[:8]
    assert rdb.hgetall(usage) == {f"{day}:a": "0", f"{day}:l": "1"}
    assert rdb.ttl(usage) > 89 * 86400
    # A stale field planted now is dropped only by a day's first count of an outcome: the
    # next admission of the same day and outcome is not one, so the stale field stays.
    rdb.hset(usage, "20000101:a", 5)
    usage_lua(rdb, "return count_usage(KEYS[1], 'a', tonumber(ARGV[1]))", [usage], [now])
    assert rdb.hget(usage, "20000101:a") == "5"
    assert rdb.hget(usage, f"{day}:a") == "1"
    # Nothing to move (the hash expired meanwhile): nothing changes.
    assert rdb.eval(recount, 1, usage, f"{day}:p") == 0
    assert rdb.hget(usage, f"{day}:l") == "1"


# ---- gunicorn, four workers, concurrent requests ---------------------------------------


@pytest.mark.gunicorn
def test_counts_are_exact_under_four_workers(live, make_user):
    """150 concurrent requests over two keys, spread over 4 workers: requests_30d and the
    series are exact per key."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    a, b = session.create_key("a").json(), session.create_key("b").json()

    def call(i: int) -> int:
        raw = a["key"] if i % 3 else b["key"]
        return requests.get(
            f"{live.url}/api/me", headers={"Authorization": f"Bearer {raw}"}, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = Counter(pool.map(call, range(150)))
    assert codes == Counter({200: 150})
    keys = {k["id"]: k for k in session.keys()}
    assert keys[a["id"]]["requests_30d"] == 100 and keys[b["id"]]["requests_30d"] == 50
    assert keys[a["id"]]["requests_today"] == 100
    series = session.http.get(f"{live.url}/api/keys/{b['id']}/usage?days=30", timeout=10).json()
    assert sum(d["admitted"] + d["rate_limited"] + d["plan_refused"] for d in series["days"]) == 50
