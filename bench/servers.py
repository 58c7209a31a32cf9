"""The processes under test: one redis-server (and a Sentinel group and a cluster for their
rows: deploy/local_redis.py), and one gunicorn per row (deploy/processes.py), all on free
ports; and seeding each row's user and key."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any

import redis

from bench.baseline_apps import COMMON_KEY_PREFIX
from bench.load import address
from deploy.local_redis import RedisServer
from deploy.processes import ROOT, Gunicorn, http_status
from store import apikeys, users
from store.client import Storage, connect
from store.names import KeyNames

__all__ = [
    "ME",
    "RedisServer",
    "RowServer",
    "SCRYPT_N",
    "START_TIMEOUT",
    "request",
    "seed_common",
    "seed_ours",
]

START_TIMEOUT = 60.0  # a row's gunicorn starting while other rows' servers run
ME = "/api/me"  # what every row serves: the request the benchmark measures
SCRYPT_N = 2**14  # config.py's default; set explicitly so seeding and the server agree
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password-1234"


def request(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on its own connection: (status, headers, body)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, "/" + rest, body=payload, headers={**all_headers, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class RowServer(Gunicorn):
    """One row's server: gunicorn with deploy/gunicorn.conf.py of the tree in `cwd`, logging
    to a file in `log_dir`; ready once it answers HTTP at all (the baselines have no /healthz)."""

    def __init__(
        self,
        name: str,
        app: str,
        workers: int,
        env: dict[str, str],
        log_dir: Path,
        cwd: Path = ROOT,
    ) -> None:
        # The same logging choice for every row: gunicorn still formats each access line
        # (through the redactor), but nothing waits on a terminal.
        env = {**os.environ, "ACCESS_LOG": "/dev/null", **env}
        log = log_dir / f"gunicorn-{name}.log"
        super().__init__(name, env, log, workers, app=app, cwd=cwd)

    def ready(self) -> bool:
        """True once GET /api/me answers with any status."""
        return http_status(self.url + ME) is not None


def seed_ours(redis_url: str, ours: RowServer) -> tuple[str, dict[str, Any]]:
    """A pro user (store), a key through the HTTP API; returns (raw key, its /api/me body)."""
    storage = Storage(connect(redis_url, 2.0), KeyNames())
    users.create(storage, BENCH_EMAIL, BENCH_PASSWORD, "pro", SCRYPT_N)
    status, headers, body = request(
        f"{ours.url}/auth/login", "POST", {"email": BENCH_EMAIL, "password": BENCH_PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body!r}")
    # The cookie is Secure (production); http.client hands it back as any header.
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    csrf = json.loads(body)["csrf_token"]
    status, _, body = request(
        f"{ours.url}/api/keys", "POST", {"name": "bench"}, {"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    if status != 201:
        raise RuntimeError(f"key creation failed: {status} {body!r}")
    raw_key = json.loads(body)["key"]
    status, _, body = request(
        ours.url + ME, headers={"Authorization": f"Bearer {raw_key}", "X-Forwarded-For": address(0)}
    )
    if status != 200:
        raise RuntimeError(f"GET /api/me with the new key failed: {status} {body!r}")
    return raw_key, json.loads(body)


def seed_common(client: redis.Redis, raw_key: str, me: dict[str, Any]) -> None:
    """The common app's key record: a hash found by the SHA-256 of the raw key."""
    client.hset(
        COMMON_KEY_PREFIX + apikeys.digest(raw_key),
        mapping={
            "id": me["auth"]["key_id"],
            "user_id": me["id"],
            "email": me["email"],
            "plan": me["plan"],
            "credits_used": me["credits"]["used"],
        },
    )
