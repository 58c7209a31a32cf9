"""The processes under test: one redis-server (and a Sentinel group and a cluster for their
rows: deploy/local_redis.py), and one gunicorn per row, all on free ports."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from bench.baseline_apps import COMMON_KEY_PREFIX
from bench.load import address
from deploy.local_redis import RedisServer, stop_process, wait_until
from deploy.parts import LOOPBACK, ROOT, free_port
from store import apikeys, users
from store.client import Storage, connect
from store.names import KeyNames

__all__ = [
    "Gunicorn",
    "RedisServer",
    "SCRYPT_N",
    "cpu_seconds",
    "request",
    "seed_common",
    "seed_ours",
    "worker_pids",
]

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
SCRYPT_N = 2**14  # config.py's default; set explicitly so seeding and the server agree
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password-1234"


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name), or None if it has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def worker_pids(master: int) -> list[int]:
    """The children of a process, here a gunicorn master's workers (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields is not None and int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far, in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


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


class Gunicorn:
    """One row's server: gunicorn with deploy/gunicorn.conf.py, logging to a file."""

    def __init__(
        self, name: str, app_spec: str, workers: int, env: dict[str, str], log_dir: Path
    ) -> None:
        self.name, self.app_spec, self.workers = name, app_spec, workers
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # The same logging choice for every row: gunicorn still formats each
            # access line (through the redactor), but nothing waits on a terminal.
            "ACCESS_LOG": "/dev/null",
            **env,
        }
        self.log_path = log_dir / f"gunicorn-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/api/me") -> str:
        """http://127.0.0.1:<port><path>."""
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self) -> Gunicorn:
        """Start gunicorn (returns at once; wait() blocks until it answers)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(GUNICORN_CONF),
                    "--workers",
                    str(self.workers),
                    "--bind",
                    f"{LOOPBACK}:{self.port}",
                    self.app_spec,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait(self) -> Gunicorn:
        """Block until the server answers HTTP at all (any status); fail with its log if it
        exits or does not answer within 60 s."""
        assert self.process is not None
        ended = self.process.poll
        try:
            wait_until(lambda: ended() is not None or request(self.url())[0] > 0, timeout=60)
        except TimeoutError as exc:
            raise RuntimeError(f"{self.name} did not start:\n{self.logs()[-3000:]}") from exc
        if ended() is not None:
            raise RuntimeError(f"{self.name} exited at start:\n{self.logs()[-3000:]}")
        return self

    def stop(self) -> None:
        """Stop gunicorn gracefully, or kill it after 15 s."""
        stop_process(self.process)

    def pids(self) -> list[int]:
        """The master and its workers."""
        assert self.process is not None
        return [self.process.pid, *worker_pids(self.process.pid)]

    def logs(self) -> str:
        """Everything this server has written."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def seed_ours(redis_url: str, ours: Gunicorn) -> tuple[str, dict[str, Any]]:
    """A pro user (store), a key through the HTTP API; returns (raw key, its /api/me body)."""
    storage = Storage(connect(redis_url, 2.0), KeyNames())
    users.create(storage, BENCH_EMAIL, BENCH_PASSWORD, "pro", SCRYPT_N)
    status, headers, body = request(
        ours.url("/auth/login"), "POST", {"email": BENCH_EMAIL, "password": BENCH_PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body!r}")
    # The cookie is Secure (production); http.client hands it back as any header.
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    csrf = json.loads(body)["csrf_token"]
    status, _, body = request(
        ours.url("/api/keys"), "POST", {"name": "bench"}, {"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    if status != 201:
        raise RuntimeError(f"key creation failed: {status} {body!r}")
    raw_key = json.loads(body)["key"]
    status, _, body = request(
        ours.url(), headers={"Authorization": f"Bearer {raw_key}", "X-Forwarded-For": address(0)}
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
