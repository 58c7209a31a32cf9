"""README, "Quickstart": what `make run` (scripts/run.sh) serves, where its data lives, and that
Ctrl-C stops everything it started.

Each test runs the script from a copy of the repository (the files git tracks or would track,
plus a symlink to the real .venv), so var/ is created in the copy, never in the working tree.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from deploy.local_redis import RedisServer
from store.names import KeyNames
from tests.helpers import PASSWORD
from tests.stack.run_script import RunScript, session_processes

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

# Everything scripts/run.sh runs by name from PATH when there is no redis-server.
SCRIPT_COMMANDS = (
    "bash",
    "env",
    "dirname",
    "mkdir",
    "chmod",
    "cat",
    "seq",
    "sleep",
    "rm",
    "mktemp",
)


def _signup_and_login(base: str, email: str) -> requests.Session:
    http = requests.Session()
    r = http.post(f"{base}/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10)
    assert r.status_code == 201, r.text
    r = http.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return http


def _redis_pids(run: RunScript) -> list[int]:
    return [p for p, (_ppid, cmd) in session_processes(run.sid).items() if "redis-server" in cmd]


# ---- the tests ----------------------------------------------------------------------------


def test_own_redis_under_var_persists_across_restart_and_ctrl_c_stops_all(
    repo: Path, base_env: dict[str, str], scripts: list[RunScript]
) -> None:
    """redis-server on PATH: append-only store on var/redis.sock, data survives, Ctrl-C ends all."""
    assert shutil.which("redis-server", path=base_env.get("PATH")), "redis-server not on PATH"
    run = RunScript(repo, base_env, workers=2)
    scripts.append(run)
    run.start()

    sock = repo / "var" / "redis.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert (repo / "var" / "appendonlydir").is_dir()
    assert "redis-server" in run.output()
    own = redis.Redis(unix_socket_path=str(sock), socket_timeout=2, decode_responses=True)
    assert own.config_get("appendonly") == {"appendonly": "yes"}
    assert own.config_get("port") == {"port": "0"}  # no TCP port that could collide
    redis_pids = _redis_pids(run)
    assert len(redis_pids) == 1, session_processes(run.sid)
    workers = run.gunicorn_workers(2)

    email = "persist@example.test"
    http = _signup_and_login(f"{run.url}", email)
    assert own.get(f"genmb:email:{email}")  # the app really writes to the script's redis
    own.close()

    before = [*redis_pids, *workers, *session_processes(run.sid)]
    code = run.ctrl_c()
    assert code == 0, run.output()
    run.assert_all_stopped(before)
    gone = redis.Redis(unix_socket_path=str(sock), socket_timeout=1)
    with pytest.raises(redis.ConnectionError):
        gone.ping()
    gone.close()

    # Start again: same var/, the user and the session are still there.
    again = RunScript(repo, base_env, workers=2)
    scripts.append(again)
    again.start()
    r = http.get(f"{again.url}/auth/session", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == email
    r = requests.post(
        f"{again.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 200, r.text
    r = requests.post(
        f"{again.url}/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 409, r.text

    http.close()
    before = [*_redis_pids(again), *session_processes(again.sid)]
    assert again.ctrl_c() == 0, again.output()
    again.assert_all_stopped(before)


def test_without_redis_server_falls_back_to_embedded_store_with_one_worker(
    repo: Path, base_env: dict[str, str], scripts: list[RunScript], tmp_path: Path
) -> None:
    """No REDIS_URL, no redis-server on PATH: a warning, the embedded store, one worker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in SCRIPT_COMMANDS:
        target = shutil.which(name)
        assert target, name
        (bin_dir / name).symlink_to(target)
    env = {**base_env, "PATH": str(bin_dir)}
    assert shutil.which("redis-server", path=env["PATH"]) is None

    run = RunScript(repo, env, workers=2)
    scripts.append(run)
    run.start()
    out = run.output()
    assert re.search(r"WARNING.*embedded", out), out
    assert "with 1 worker(s)" in out, out
    assert not (repo / "var" / "redis.sock").exists()
    workers = run.gunicorn_workers(1)
    time.sleep(0.5)  # gunicorn forks all its workers at boot; a second would show by now
    assert len(run.gunicorn_workers(1)) == 1
    assert out.count("Booting worker") == run.output().count("Booting worker") == 1

    email = "embedded@example.test"
    http = _signup_and_login(run.url, email)
    for _ in range(5):  # every request sees the same store
        r = http.get(f"{run.url}/auth/session", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email"] == email
    http.close()

    before = [*workers, *session_processes(run.sid)]
    assert run.ctrl_c() == 0, run.output()
    run.assert_all_stopped(before)


def test_redis_url_set_uses_that_redis_and_leaves_it_running(
    repo: Path,
    base_env: dict[str, str],
    scripts: list[RunScript],
    redis_server: RedisServer,
    redis_url: str,
) -> None:
    """REDIS_URL set: the app stores there, starts no redis of its own, Ctrl-C leaves it up."""
    run = RunScript(repo, {**base_env, "REDIS_URL": redis_url}, workers=2)
    scripts.append(run)
    run.start()
    out = run.output()
    assert "storage: REDIS_URL" in out, out
    assert "WARNING" not in out, out
    assert not (repo / "var" / "redis.sock").exists()
    assert _redis_pids(run) == []
    workers = run.gunicorn_workers(2)

    email = "external@example.test"
    _signup_and_login(run.url, email).close()
    rdb = redis_server.client()
    user_id = rdb.get(f"genmb:email:{email}")
    assert user_id and rdb.hget(KeyNames().user(user_id), "email") == email

    before = [*workers, *session_processes(run.sid)]
    assert run.ctrl_c() == 0, run.output()
    run.assert_all_stopped(before)
    assert rdb.ping()  # Ctrl-C stops only what the script started
    rdb.close()


def test_sigterm_to_the_script_alone_stops_everything(
    repo: Path, base_env: dict[str, str], scripts: list[RunScript]
) -> None:
    """`kill <pid>` of run.sh (not the whole group) also stops gunicorn and its redis-server."""
    run = RunScript(repo, base_env, workers=2)
    scripts.append(run)
    run.start()
    assert len(_redis_pids(run)) == 1
    before = list(session_processes(run.sid))
    assert run.process is not None
    run.process.terminate()  # SIGTERM to the script's own pid only
    try:
        run.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("run.sh still running 10 s after SIGTERM") from None
    run.assert_all_stopped(before)
