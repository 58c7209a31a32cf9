"""Fixtures of the stack tier: a copy of the repository to run `make run` and `make stack` from,
an environment without storage settings, the run.sh scripts a test started, and the HTTP
clients it opened."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.helpers import OPEN_CLIENTS, checkout_copy
from tests.stack.run_script import RunScript


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree's files that git would track (not var/, not .venv).

    Short path: the redis socket under var/ must fit in ~100 bytes.
    """
    dest = checkout_copy(tmp_path_factory.mktemp("run"))
    assert os.access(dest / "scripts" / "run.sh", os.X_OK)
    return dest


@pytest.fixture
def base_env() -> dict[str, str]:
    """The test's environment without any storage or secret setting."""
    env = dict(os.environ)
    for name in ("REDIS_URL", "SECRET_KEY", "PORT", "WORKERS", "GENMB_ENV", "BIND", "ACCESS_LOG"):
        env.pop(name, None)
    return env


@pytest.fixture
def scripts() -> Iterator[list[RunScript]]:
    """Collects every RunScript a test starts, and kills what is left of them at the end."""
    started: list[RunScript] = []
    yield started
    for run in started:
        run.kill()


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Close every helpers.client session the test opened, so no socket outlives it."""
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()
