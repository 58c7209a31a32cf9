"""Real processes for the tests: gunicorn on a free loopback port, and the Redis topologies
of deploy/local_redis.py (shared with the benchmark), re-exported here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from deploy.local_redis import (
    ClusterGroup,
    CommandRecorder,
    NodeRecorders,
    RedisServer,
    SentinelGroup,
    is_setup,
)
from deploy.processes import LOOPBACK, ROOT, Gunicorn, free_port, wait_until

__all__ = [
    "LOOPBACK",
    "ROOT",
    "ClusterGroup",
    "CommandRecorder",
    "Gunicorn",
    "app_instances",
    "app_server",
    "checkout_copy",
    "flask_cli",
    "NodeRecorders",
    "RedisServer",
    "SentinelGroup",
    "free_port",
    "is_setup",
    "wait_until",
    "whole_and_empty",
]


def app_server(
    redis_url: str, log: Path, workers: int = 4, env: dict[str, str] | None = None
) -> Gunicorn:
    """The app under gunicorn on a free port with the tests' settings, not started yet:
    `.start()` it (waits until it answers) and `.stop()` it, or use it in a `with`."""
    settings = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-for-gunicorn-tests",
        "GENMB_ENV": "development",
        "PASSWORD_SCRYPT_N": "1024",
    }
    return Gunicorn("app", {**os.environ, **settings, **(env or {})}, log, workers)


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
    with ExitStack() as running:
        yield [
            running.enter_context(
                app_server(
                    redis_url, tmp_path_factory.mktemp(f"{name}-app{index}") / "log", workers, env
                )
            )
            for index in range(count)
        ]


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
