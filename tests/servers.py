"""Real processes for the tests: gunicorn on a free loopback port, and the Redis topologies
of deploy/local_redis.py (shared with the benchmark), re-exported here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from deploy.local_redis import (
    ClusterGroup,
    CommandRecorder,
    NodeRecorders,
    RedisServer,
    SentinelGroup,
    is_setup,
    stop_process,
    wait_until,
)
from deploy.parts import LOOPBACK, ROOT, free_port

__all__ = [
    "LOOPBACK",
    "ROOT",
    "ClusterGroup",
    "CommandRecorder",
    "Gunicorn",
    "app_instances",
    "checkout_copy",
    "flask_cli",
    "NodeRecorders",
    "RedisServer",
    "SentinelGroup",
    "free_port",
    "is_setup",
    "stop_process",
    "wait_until",
    "whole_and_empty",
]


class Gunicorn:
    """The real app under gunicorn with several workers, logging to a file."""

    def __init__(
        self, redis_url: str, log_path: Path, workers: int = 4, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.workers = workers
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key-for-gunicorn-tests",
            "GENMB_ENV": "development",
            "PASSWORD_SCRYPT_N": "1024",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Gunicorn:
        """Start gunicorn and wait until every worker can answer."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "--workers",
                str(self.workers),
                "--bind",
                f"{LOOPBACK}:{self.port}",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=2).ok, timeout=30)
        return self

    def stop(self) -> None:
        """Stop gunicorn gracefully and close its log."""
        stop_process(self.process)
        self._log.close()

    def logs(self) -> str:
        """Everything gunicorn and the app have written so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def app_instances(
    redis_url: str,
    tmp_path_factory,
    name: str,
    count: int = 2,
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[list[Gunicorn]]:
    """`count` gunicorn instances of the app on one Redis URL (two instances behind a load
    balancer, as in production), stopped on exit."""
    instances: list[Gunicorn] = []
    try:
        for index in range(count):
            log = tmp_path_factory.mktemp(f"{name}-app{index}") / "log"
            instances.append(Gunicorn(redis_url, log, workers, env).start())
        yield instances
    finally:
        for instance in instances:
            instance.stop()


def flask_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS...` as an operator types it: a process of its own in the
    project's directory, with exactly `env`; its exit code and output, never raising."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def checkout_copy(dest: Path) -> Path:
    """A copy in `dest` of the working tree's files git tracks or would track (so var/ and
    .venv are not copied), with .venv linked to this checkout's; returns `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # not deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def whole_and_empty(stack) -> None:  # noqa: ANN001 - deploy.stack.Stack
    """Assert every part of a `make stack` topology runs, and empty its database (every
    primary's, on Cluster)."""
    for part in stack.parts:
        assert part.running, f"{part.name} is not running"
    for name in stack.primary_names():
        with stack.redis_client(port=stack.node_ports[name]) as admin:
            admin.flushall()
