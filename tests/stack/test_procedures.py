"""Issue #19, item 3: the backup and restore procedures of docs/deploy.md work as written.

The shell blocks are taken from the document itself (each follows a
`<!-- procedure: NAME ... -->` marker), so the document cannot rot: they are run with bash,
from a directory laid out as the repository is (var/stack/ of `make stack`'s topology), against
the real stack: back up, change the data, stop, restore, start again.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from deploy.processes import ROOT
from deploy.stack import Stack
from tests.helpers import PASSWORD
from tests.stack.helpers import require_nginx, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

DOC = ROOT / "docs" / "deploy.md"


def procedure(name: str) -> str:
    """The ```sh block that follows `<!-- procedure: NAME` in docs/deploy.md."""
    text = DOC.read_text()
    marker = f"<!-- procedure: {name} "
    assert text.count(marker) == 1, f"docs/deploy.md must mark exactly one {name!r} block"
    after = text.split(marker, 1)[1]
    assert after.split("\n", 2)[1] == "```sh", "the marker must sit right above its block"
    return after.split("```sh\n", 1)[1].split("\n```", 1)[0]


def run(block: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a documented block as an operator's shell would, stopping at the first failure."""
    done = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def signup(base: str, email: str) -> int:
    return requests.post(
        f"{base}/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10
    ).status_code


def login(base: str, email: str) -> int:
    return requests.post(
        f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    ).status_code


def test_documented_backup_and_restore(tmp_path):
    """The backup taken while the stack runs brings back exactly its data after the restore."""
    require_nginx()
    backup, restore = procedure("make-stack-backup"), procedure("make-stack-restore")
    var = tmp_path / "var"
    stack = Stack(var, workers=1, env=stack_env()).start()
    try:
        assert signup(stack.url, "before@example.test") == 201
        run(backup, tmp_path)
        snapshots = sorted(tmp_path.glob("genmb-*.rdb"))
        assert len(snapshots) == 1 and snapshots[0].stat().st_size > 0, snapshots
        assert signup(stack.url, "after@example.test") == 201  # not in the backup
    finally:
        stack.stop()

    run(restore, tmp_path, BACKUP=snapshots[0].name)
    data = var / "stack" / "redis"
    assert (data / "appendonlydir").is_dir()
    assert not (data / "dump.rdb").exists()

    stack = Stack(var, workers=1, env=stack_env()).start()
    try:
        assert login(stack.url, "before@example.test") == 200
        assert login(stack.url, "after@example.test") == 401
        assert stack.redis_client().get("genmb:email:after@example.test") is None
    finally:
        stack.stop()


def test_restore_server_cannot_meet_another():
    """The restore's redis-server names its port (0: none; the default 6379 may be someone
    else's server) and takes no snapshots of its own."""
    block = procedure("make-stack-restore").replace("\\\n", " ")
    servers = [line for line in block.splitlines() if line.lstrip().startswith("redis-server")]
    assert servers
    for line in servers:
        assert "--port 0" in line and '--save ""' in line, line


def test_restore_refuses_without_a_backup_named(tmp_path):
    """Run without BACKUP, the restore stops at its first line and touches nothing."""
    (tmp_path / "var" / "stack" / "redis" / "appendonlydir").mkdir(parents=True)
    done = subprocess.run(
        ["bash", "-e", "-c", procedure("make-stack-restore")],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "BACKUP"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "set BACKUP" in done.stderr
    assert (tmp_path / "var" / "stack" / "redis" / "appendonlydir").is_dir()
