"""Issue #18: which limit the X-RateLimit-* headers describe when two limits apply.

On codegen and deploy both the client IP's window and the user's endpoint limit count the
request. The README: the headers describe whichever has fewer requests left, and on a tie
the one that frees up later, so a client that follows them is never refused by the other.
"""

from __future__ import annotations

import pytest

from tests.helpers import create_key, login, make_app

pytestmark = pytest.mark.integration

MEASURED_IP = "192.0.2.51"  # a window of its own, untouched by the set-up requests


@pytest.mark.parametrize(
    "global_limit,deploy_limit,left",
    [
        ("3 per minute", "2 per hour", 1),  # 1 left of each
        ("2 per minute", "1 per hour", 0),  # none left of either
    ],
)
def test_on_a_tie_the_headers_describe_the_limit_that_frees_up_later(
    app, redis_url, make_user, global_limit, deploy_limit, left
):
    """The IP window (per minute) and the deploy limit (per hour) have equally many requests
    left: the headers describe the deploy limit, which frees up later."""
    user = make_user("pro")
    web = app.test_client()  # set-up on the default limits, from another address
    auth = {"X-MCP-API-Key": create_key(web, login(web, user.email))["key"]}
    app_id = web.post("/api/apps", json={"name": "a"}, headers=auth).json["id"]

    limited = make_app(redis_url, RATELIMIT_GLOBAL=global_limit, RATELIMIT_DEPLOY=deploy_limit)
    client = limited.test_client()
    client.environ_base["REMOTE_ADDR"] = MEASURED_IP
    assert client.get("/api/me", headers=auth).status_code == 200
    deploy = client.post(f"/api/apps/{app_id}/deploy", headers=auth)
    assert deploy.status_code == 202, deploy.json

    per_hour = int(deploy_limit.split()[0])
    seen = {h: deploy.headers[f"X-RateLimit-{h}"] for h in ("Limit", "Remaining", "Reset")}
    assert seen["Limit"] == str(per_hour), f"headers describe the IP window: {seen}"
    assert seen["Remaining"] == str(left)
    if left:
        assert seen["Reset"] == "0"
    else:  # the deploy limit frees up in about an hour, the IP window within a minute
        # (flask-limiter's reset_at is int(reset) + 1: up to 3601 seconds.)
        assert 60 < int(seen["Reset"]) <= 3601, seen
