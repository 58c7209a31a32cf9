"""Helpers the tests import (fixtures live in conftest.py): the test user's password and
hash cost, an app on a given store, logging in and creating a key with Flask's test client
or over real HTTP, the app under gunicorn with the tests' settings, and the operator's CLI.
The processes themselves (gunicorn, Redis topologies) are deploy/processes.py's and
deploy/local_redis.py's, shared with `make stack` and the benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from app import create_app
from deploy.processes import ROOT, Gunicorn
from store import apikeys, users
from store.client import Storage

PASSWORD = "correct horse battery"
FAST_HASH = 2**10  # scrypt cost for tests; production default is 2**14


def make_app(redis_url: str, **overrides):
    """An app on the given store with test-friendly settings."""
    config = {
        "REDIS_URL": redis_url,
        "TESTING": True,
        "PASSWORD_SCRYPT_N": FAST_HASH,
        "SECRET_KEY": "test-secret",
        **overrides,
    }
    return create_app(config)


@dataclass
class UserFactory:
    """Creates users straight in the store (what `flask users create` does)."""

    storage: Storage
    count: int = 0

    def __call__(self, plan: str = "pro", email: str | None = None) -> users.User:
        self.count += 1
        email = email or f"user{self.count}@example.test"
        return users.create(self.storage, email, PASSWORD, plan, FAST_HASH)


def a_key() -> str:
    """A freshly generated, well-formed raw key."""
    return apikeys.generate()


def login(client, email: str) -> str:
    """Log a Flask test client in; returns the CSRF token."""
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response.json["csrf_token"]


def create_key(client, csrf: str, name: str = "test key") -> dict:
    """Create a key through the API with a logged-in test client; returns the 201 body."""
    response = client.post("/api/keys", json={"name": name}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201, response.json
    return response.json


class LiveSession:
    """A requests.Session logged in over real HTTP; carries the CSRF token."""

    def __init__(self, base_url: str, email: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        r = self.http.post(
            f"{base_url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def create_key(self, name: str = "live key") -> requests.Response:
        """POST /api/keys."""
        return self.http.post(
            f"{self.base_url}/api/keys",
            json={"name": name},
            headers={"X-CSRF-Token": self.csrf},
            timeout=30,
        )

    def delete_key(self, key_id: str) -> requests.Response:
        """DELETE /api/keys/<id>."""
        return self.http.delete(
            f"{self.base_url}/api/keys/{key_id}", headers={"X-CSRF-Token": self.csrf}, timeout=30
        )

    def keys(self) -> list[dict]:
        """GET /api/keys."""
        r = self.http.get(f"{self.base_url}/api/keys", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["keys"]


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
    return _run_in_project([sys.executable, "-m", "flask", "--app", "app", *args], env)


def gunicorn_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """gunicorn with deploy/gunicorn.conf.py in the foreground, with exactly `env`, for a
    start that must refuse (exit 2): its exit code and output, never raising."""
    command = "gunicorn -c deploy/gunicorn.conf.py app:create_app()".split()
    return _run_in_project([sys.executable, "-m", *command], env)


def _run_in_project(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
