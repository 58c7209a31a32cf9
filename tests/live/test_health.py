"""Issue #19, item 5: /healthz and /readyz, in /openapi.json and under an out-of-memory Redis;
each 409 documented with the code it can really answer."""

from __future__ import annotations

import pytest

from tests.helpers import make_app


def _document() -> dict:
    app = make_app("memory://")
    return app.test_client().get("/openapi.json").get_json()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_in_the_openapi_document(path):
    """Documented: GET, no credentials, 200 or 503 with the health body."""
    operation = _document()["paths"][path]["get"]
    assert operation["security"] == []
    assert set(operation["responses"]) == {"200", "503"}


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


def test_probes_answer_503_without_redis():
    """Redis unreachable: both 503, in time."""
    client = make_app("redis://127.0.0.1:1/0", REDIS_TIMEOUT=0.5).test_client()
    assert client.get("/healthz").status_code == 503
    assert client.get("/readyz").status_code == 503
