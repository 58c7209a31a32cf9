"""Issue #19, item 5: with the embedded store the operator CLI refuses, instead of printing a
user that only its own process's memory holds (the server never sees it)."""

from __future__ import annotations

import os

import pytest

from tests.helpers import FAST_HASH, flask_cli, make_app


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "x@example.test", "--plan", "pro", "--password", "long enough"],
        ["users", "set-plan", "x@example.test", "pro"],
    ],
)
def test_cli_refuses_the_embedded_store(args):
    """One clear line, a non-zero exit, no JSON user."""
    result = make_app("memory://").test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert "embedded store" in result.output and "POST /auth/signup" in result.output
    assert '"id"' not in result.output


def test_real_flask_cli_refuses_the_embedded_store():
    """The command an operator types, as a process."""
    env = {
        **os.environ,
        "REDIS_URL": "memory://",
        "GENMB_ENV": "development",
        "PASSWORD_SCRYPT_N": str(FAST_HASH),
    }
    done = flask_cli(
        env, "users", "create", "x@example.test", "--plan", "pro", "--password", "long enough"
    )
    assert done.returncode == 1
    assert '"id"' not in done.stdout  # no user printed (stdout has the store warning)
    assert "Error: REDIS_URL=memory:// is the embedded store" in done.stderr
    assert "Traceback" not in done.stderr
