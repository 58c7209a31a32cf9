"""Issue #13: POST /api/secret-scanning/github, GitHub's secret-scanning partner protocol.

The tests sign reports with an ECDSA P-256 key pair of their own and serve the keys document
from a local HTTP server on a free port (SECRET_SCANNING_KEYS_URL points at it); GitHub's
published sample request is replayed byte for byte against GitHub's published keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

import pytest
import requests

from security.github_signature import MISS_REFETCHES
from store import apikeys
from store.names import KeyNames
from tests.helpers import app_server, create_key, login, make_app
from tests.live.github_sample import (
    GITHUB_PUBLIC_KEYS,
    SAMPLE_BODY,
    SAMPLE_KEY_IDENTIFIER,
    SAMPLE_SIGNATURE,
)
from tests.live.helpers import PATH, KeysServer, Signer, report

pytestmark = pytest.mark.integration

KEY_ID = "test-key-1"


@pytest.fixture
def keys_server() -> Iterator[KeysServer]:
    """The keys document server, started and stopped around the test."""
    with KeysServer() as server:
        yield server


@pytest.fixture
def signer(keys_server: KeysServer) -> Signer:
    """A key pair whose public half the keys server publishes."""
    signer = Signer(KEY_ID)
    keys_server.publish(signer.entry())
    return signer


@pytest.fixture
def scan_app(redis_url: str, keys_server: KeysServer):
    """The app with SECRET_SCANNING_KEYS_URL on the local keys server."""
    return make_app(redis_url, SECRET_SCANNING_KEYS_URL=keys_server.url)


@pytest.fixture
def scan_client(scan_app):
    """A test client of that app."""
    return scan_app.test_client()


def post(client, body: bytes, headers: dict[str, str]):
    """POST raw bytes to the receiver."""
    return client.post(PATH, data=body, headers=headers)


def new_key(client, make_user, name: str = "CI deploy") -> tuple[str, dict]:
    """A pro user with a live key through the API: (user id, the 201 body)."""
    user = make_user("pro")
    created = create_key(client, login(client, user.email), name)
    return user.id, created


def me(client, raw: str) -> int:
    """Status of GET /api/me with the key."""
    return client.get("/api/me", headers={"Authorization": f"Bearer {raw}"}).status_code


def data_keys(rdb) -> set[str]:
    """Every key but the limiter's own counters."""
    return {k for k in rdb.keys("*") if not k.startswith(KeyNames().prefix + ":limiter:")}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- signatures ------------------------------------------------------------------------


def test_signed_report_revokes_the_live_key_and_answers_feedback(
    scan_client, signer, make_user, rdb, keys_server
):
    """A good signature: the key is refused on its very next request; feedback, no token."""
    owner, created = new_key(scan_client, make_user)
    raw = created["key"]
    assert me(scan_client, raw) == 200
    body = report(raw)
    response = post(scan_client, body, signer.headers(body))
    assert response.status_code == 200, response.json
    assert response.json == [
        {"token_hash": sha(raw), "token_type": "genmb_api_key", "label": "true_positive"}
    ]
    assert raw not in response.get_data(as_text=True)
    assert me(scan_client, raw) == 401
    assert rdb.hlen(f"genmb:user:{{{owner}}}:keys") == 0
    assert keys_server.requests and "genmb" in keys_server.requests[0]["User-Agent"]


def test_bad_signature_is_401_and_changes_nothing(scan_client, signer, make_user):
    """A signature over other bytes, a forged key, or garbage: 401, the key still works."""
    _, created = new_key(scan_client, make_user)
    body = report(created["key"])
    other = signer.headers(report("something else"))
    forger = Signer(KEY_ID)  # same identifier, another private key
    garbage = {**signer.headers(body), "Github-Public-Key-Signature": "bm90IGEgc2lnbmF0dXJl"}
    for headers in (other, forger.headers(body), garbage, {"Content-Type": "application/json"}):
        response = post(scan_client, body, headers)
        assert response.status_code == 401, headers
        assert response.json["error"]["code"] == "invalid_signature"
    assert me(scan_client, created["key"]) == 200


def test_headers_are_case_insensitive(scan_client, signer, make_user):
    """GITHUB-PUBLIC-KEY-* (as GitHub's older samples spell them) work the same."""
    _, created = new_key(scan_client, make_user)
    body = report(created["key"])
    headers = {k.upper(): v for k, v in signer.headers(body).items()}
    assert post(scan_client, body, headers).status_code == 200
    assert me(scan_client, created["key"]) == 401


def test_an_altered_body_fails_even_by_a_trailing_newline(scan_client, signer, make_user):
    """The signature covers the raw bytes: a newline added (or JSON re-spaced) is 401."""
    _, created = new_key(scan_client, make_user)
    body = report(created["key"])
    headers = signer.headers(body)
    respaced = json.dumps(json.loads(body)).encode()
    for altered in (body + b"\n", respaced):
        assert post(scan_client, altered, headers).status_code == 401
    assert me(scan_client, created["key"]) == 200
    assert post(scan_client, body, headers).status_code == 200


def test_unknown_identifier_refetches_the_document_once(
    scan_client, signer, keys_server, make_user
):
    """GitHub rotated its key: the copy lacks the identifier, one refetch finds it."""
    _, created = new_key(scan_client, make_user)
    warm = report("genmb_sk_" + "x" * 32)
    assert post(scan_client, warm, signer.headers(warm)).status_code == 200
    assert len(keys_server.requests) == 1
    rotated = Signer("test-key-2")
    keys_server.publish(signer.entry(False), rotated.entry())
    body = report(created["key"])
    assert post(scan_client, body, rotated.headers(body)).status_code == 200
    assert len(keys_server.requests) == 2
    assert me(scan_client, created["key"]) == 401
    # The old key still verifies from the copy, without a fetch.
    assert post(scan_client, warm, signer.headers(warm)).status_code == 200
    assert len(keys_server.requests) == 2


def test_identifiers_nobody_published_cost_a_bounded_number_of_refetches(
    scan_client, signer, keys_server, make_user
):
    """Forged identifiers are 401; they cannot make the service hammer GitHub."""
    _, created = new_key(scan_client, make_user)
    body = report(created["key"])
    for n in range(8):
        forged = Signer(f"forged-{n}")
        assert post(scan_client, body, forged.headers(body)).status_code == 401
    # The first fetch, then one refetch per miss up to MISS_REFETCHES a minute.
    assert len(keys_server.requests) == 1 + MISS_REFETCHES
    assert me(scan_client, created["key"]) == 200


def test_the_document_is_cached_and_a_failed_fetch_keeps_the_last_good_copy(
    scan_app, scan_client, signer, keys_server, make_user
):
    """Many reports, one fetch; when GitHub fails, the last good copy still verifies."""
    _, created = new_key(scan_client, make_user)
    junk = report("genmb_sk_" + "y" * 32)
    for _ in range(3):
        assert post(scan_client, junk, signer.headers(junk)).status_code == 200
    assert len(keys_server.requests) == 1
    cache = scan_app.extensions["genmb_github_keys"]
    cache.max_age = cache.retry_after = 0  # make the copy stale at once
    keys_server.status = 500
    keys_server.document = {"error": "rate limited"}
    body = report(created["key"])
    assert post(scan_client, body, signer.headers(body)).status_code == 200
    assert len(keys_server.requests) >= 2  # it did try again
    assert me(scan_client, created["key"]) == 401


def test_githubs_published_sample_verifies_and_one_byte_more_does_not(
    scan_client, keys_server, rdb
):
    """The documented 104-byte sample, replayed byte for byte against GitHub's keys."""
    keys_server.document = GITHUB_PUBLIC_KEYS
    assert len(SAMPLE_BODY) == 104
    headers = {
        "Content-Type": "application/json",
        "Github-Public-Key-Identifier": SAMPLE_KEY_IDENTIFIER,
        "Github-Public-Key-Signature": SAMPLE_SIGNATURE,
    }
    before = data_keys(rdb)
    response = post(scan_client, SAMPLE_BODY, headers)
    assert response.status_code == 200, response.json
    assert response.json == [
        {"token_hash": sha("some_token"), "token_type": "some_type", "label": "false_positive"}
    ]
    for altered in (SAMPLE_BODY + b" ", SAMPLE_BODY + b"\n", b" " + SAMPLE_BODY):
        assert post(scan_client, altered, headers).status_code == 401
    assert data_keys(rdb) == before == set()


# ---- what is revoked, and what is answered ----------------------------------------------


def test_a_mixed_batch_revokes_only_live_keys_and_labels_without_telling_more(
    scan_client, signer, make_user, rdb
):
    """Live keys of two owners, a revoked key, junk: each live one refused next request."""
    owner_a, a = new_key(scan_client, make_user, "CI deploy")
    owner_b, b = new_key(scan_client, make_user, "Laptop")
    _, gone = new_key(scan_client, make_user, "Old")
    csrf = login(scan_client, f"user{3}@example.test")
    assert (
        scan_client.delete(f"/api/keys/{gone['id']}", headers={"X-CSRF-Token": csrf}).status_code
        == 204
    )
    unknown = "genmb_sk_" + "Z" * 32
    tokens = [a["key"], "not a key", gone["key"], b["key"], unknown, ""]
    body = report(*tokens)
    response = post(scan_client, body, signer.headers(body))
    assert response.status_code == 200
    labels = [item["label"] for item in response.json]
    assert labels == [
        "true_positive",
        "false_positive",
        "false_positive",
        "true_positive",
        "false_positive",
        "false_positive",
    ]
    assert [item["token_hash"] for item in response.json] == [sha(t) for t in tokens]
    text = response.get_data(as_text=True)
    assert all(t not in text for t in tokens if t)
    assert me(scan_client, a["key"]) == 401 and me(scan_client, b["key"]) == 401
    for owner in (owner_a, owner_b):
        assert rdb.hlen(f"genmb:user:{{{owner}}}:keys") == 0


def test_a_replayed_report_is_answered_and_changes_nothing_more(
    scan_client, signer, make_user, rdb
):
    """GitHub retries: the same signed bytes again are 200, and nothing else changes."""
    owner, created = new_key(scan_client, make_user)
    _, other = new_key(scan_client, make_user)
    body = report(created["key"])
    headers = signer.headers(body)
    assert post(scan_client, body, headers).json[0]["label"] == "true_positive"
    log_length = rdb.xlen(f"genmb:user:{{{owner}}}:security_log")
    again = post(scan_client, body, headers)
    assert again.status_code == 200
    assert again.json[0]["token_hash"] == sha(created["key"])
    assert rdb.xlen(f"genmb:user:{{{owner}}}:security_log") == log_length
    assert me(scan_client, created["key"]) == 401
    assert me(scan_client, other["key"]) == 200


def test_an_unconfirmed_revocation_answers_503_and_the_retry_confirms_it(
    redis_url, keys_server, signer, make_user, rdb
):
    """Too few replicas: 5xx (GitHub retries), the key refused already; the retry confirms."""
    strict = make_app(
        redis_url, SECRET_SCANNING_KEYS_URL=keys_server.url, REVOKE_MIN_REPLICAS=1, REVOKE_WAIT_MS=1
    ).test_client()
    owner, created = new_key(strict, make_user)
    body = report(created["key"])
    first = post(strict, body, signer.headers(body))
    assert first.status_code == 503
    assert first.json["error"]["code"] == "revocation_unconfirmed"
    assert me(strict, created["key"]) == 401
    digest = apikeys.digest(created["key"])
    assert rdb.exists(f"genmb:keyowner:{digest}")  # kept until a wait is confirmed
    relaxed = make_app(redis_url, SECRET_SCANNING_KEYS_URL=keys_server.url).test_client()
    retry = post(relaxed, body, signer.headers(body))
    assert retry.status_code == 200
    assert not rdb.exists(f"genmb:keyowner:{digest}")
    assert rdb.xlen(f"genmb:user:{{{owner}}}:security_log") >= 1


# ---- not the gate's, but limited ------------------------------------------------------


def test_not_counted_in_the_ip_window_nor_authenticated_by_the_gate(
    redis_url, keys_server, signer, make_user
):
    """With the IP window used up, reports still go through; a bad Bearer is ignored."""
    client = make_app(
        redis_url, SECRET_SCANNING_KEYS_URL=keys_server.url, RATELIMIT_GLOBAL="3 per minute"
    ).test_client()
    body = report("genmb_sk_" + "q" * 32)
    for _ in range(3):
        client.get("/api/me")
    assert client.get("/api/me").status_code == 429
    for _ in range(3):
        response = client.post(
            PATH, data=body, headers={**signer.headers(body), "Authorization": "Bearer nope"}
        )
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


def test_its_own_limit_and_body_cap(redis_url, keys_server, signer):
    """SECRET_SCANNING_RATELIMIT per client IP (429), SECRET_SCANNING_MAX_BYTES (413)."""
    client = make_app(
        redis_url,
        SECRET_SCANNING_KEYS_URL=keys_server.url,
        SECRET_SCANNING_RATELIMIT="2 per minute",
        SECRET_SCANNING_MAX_BYTES=2048,
    ).test_client()
    big = report(*["genmb_sk_" + "b" * 32] * 40)
    assert len(big) > 2048
    response = post(client, big, signer.headers(big))
    assert response.status_code == 413
    small = report("junk")
    assert post(client, small, signer.headers(small)).status_code == 200
    limited = post(client, small, signer.headers(small))
    assert limited.status_code == 429
    assert limited.json["error"]["code"] == "rate_limited"


def test_a_signed_body_that_is_not_the_documented_array_is_400(scan_client, signer):
    """Signed, but not [{...}]: 400 validation_error, nothing revoked."""
    for body in (b'{"token":"x"}', b"[1,2]", b"not json"):
        response = post(scan_client, body, signer.headers(body))
        assert response.status_code == 400
        assert response.json["error"]["code"] == "validation_error"


def test_raw_tokens_never_reach_a_log_line(scan_client, signer, make_user, caplog):
    """Neither a live key nor a junk token is logged; the display prefix may be."""
    _, created = new_key(scan_client, make_user)
    junk = "leaked-" + "j" * 30
    body = report(created["key"], junk)
    with caplog.at_level(logging.DEBUG):
        assert post(scan_client, body, signer.headers(body)).status_code == 200
        assert post(scan_client, body + b"\n", signer.headers(body)).status_code == 401
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert created["key"] not in text and junk not in text
    assert created["key"][len("genmb_sk_") + 4 :] not in text
    assert "reason=leaked" in text


# ---- under gunicorn: every worker refuses the key at once ------------------------------


def test_under_gunicorn_every_worker_refuses_the_reported_key_next(
    redis_server, redis_url, keys_server, signer, make_user, tmp_path
):
    """Four workers: after the 200, no worker admits the key again."""
    server = app_server(
        redis_server.url,
        tmp_path / "gunicorn.log",
        4,
        env={"SECRET_SCANNING_KEYS_URL": keys_server.url},
    ).start()
    try:
        user = make_user("pro")
        http = requests.Session()
        csrf = http.post(
            f"{server.url}/auth/login",
            json={"email": user.email, "password": "correct horse battery"},
            timeout=10,
        ).json()["csrf_token"]
        raw = http.post(
            f"{server.url}/api/keys",
            json={"name": "CI deploy"},
            headers={"X-CSRF-Token": csrf},
            timeout=10,
        ).json()["key"]
        bearer = {"Authorization": f"Bearer {raw}"}
        for _ in range(8):  # warm every worker's owner cache
            assert requests.get(f"{server.url}/api/me", headers=bearer, timeout=10).ok
        body = report(raw)
        answer = requests.post(
            f"{server.url}{PATH}", data=body, headers=signer.headers(body), timeout=10
        )
        assert answer.status_code == 200, answer.text
        statuses = {
            requests.get(f"{server.url}/api/me", headers=bearer, timeout=10).status_code
            for _ in range(12)
        }
        assert statuses == {401}
        assert raw not in server.logs()
    finally:
        server.stop()
