"""Issue #19, item 5: /healthz and /readyz, in /openapi.json and under an out-of-memory Redis;
each 409 documented with the code it can really answer."""

from __future__ import annotations

import pytest

from tests.helpers import make_app


def _document() -> dict:
    app = make_app("memory://")
    return app.test_client().get("/openapi.json").get_json()


@pytest.mark.parametrize(("path", "statuses"), [("/healthz", {"200"}), ("/readyz", {"200", "503"})])
def test_probes_are_in_the_openapi_document(path, statuses):
    """Documented: GET, no credentials; /readyz also 503 (/healthz never asks Redis)."""
    operation = _document()["paths"][path]["get"]
    assert operation["security"] == []
    assert set(operation["responses"]) == statuses


def test_each_409_names_its_own_code():
    """Signup's 409 is email_taken only (it used to list key_limit_reached too)."""
    paths = _document()["paths"]
    signup = paths["/auth/signup"]["post"]["responses"]["409"]["description"]
    assert "email_taken" in signup and "key_limit_reached" not in signup
    keys = paths["/api/keys"]["post"]["responses"]["409"]["description"]
    assert "key_limit_reached" in keys and "email_taken" not in keys


@pytest.mark.integration
def test_out_of_memory_is_alive_but_not_ready(redis_server, redis_url, rdb):
    """maxmemory reached with noeviction: /healthz stays 200 (liveness: Redis answers),
    /readyz is 503 (it refuses writes); both 200 again once memory is back."""
    client = make_app(redis_url, REDIS_KEY_PREFIX="probe").test_client()
    assert client.get("/readyz").status_code == 200
    assert rdb.pttl("probe:readyz") > 0  # the probe's key: under the prefix, expiring
    admin = redis_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")
    try:
        alive, ready = client.get("/healthz"), client.get("/readyz")
    finally:
        admin.config_set("maxmemory", "0")
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json["error"]["code"] == "service_unavailable"
    assert client.get("/readyz").status_code == 200


def test_without_redis_alive_but_not_ready():
    """Redis unreachable: /readyz 503; /healthz 200, for it never asks Redis (issue #17: an
    orchestrator must not restart healthy app processes during a Redis outage)."""
    client = make_app("redis://127.0.0.1:1/0", REDIS_TIMEOUT=0.5).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


@pytest.mark.integration
def test_readyz_loads_the_scripts(redis_server, redis_url, rdb):
    """A Redis that lost its scripts (restarted, SCRIPT FLUSH): /readyz loads every one of
    them, then answers 200."""
    app = make_app(redis_url)
    client = app.test_client()
    rdb.script_flush()
    shas = [script.sha for script in app.extensions["genmb_storage"].scripts.values()]
    assert shas and not any(rdb.script_exists(*shas))
    assert client.get("/readyz").status_code == 200
    assert all(rdb.script_exists(*shas))
