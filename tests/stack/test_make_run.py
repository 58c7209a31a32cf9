"""README, "Quickstart": what `make run` (scripts/run.sh) serves, where its data lives, and that
Ctrl-C stops everything it started.

Each test runs the script from a copy of the repository (the files git tracks or would track,
plus a symlink to the real .venv), so var/ is created in the copy, never in the working tree.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from deploy.local_redis import RedisServer
from deploy.processes import LOOPBACK, all_processes, command_line, free_port, proc_stat
from store.names import KeyNames
from tests.helpers import PASSWORD, checkout_copy

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
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


# ---- processes --------------------------------------------------------------------------


def session_processes(sid: int) -> dict[int, tuple[int, str]]:
    """Live (non-zombie) processes of a session: pid -> (ppid, command line)."""
    return {
        s.pid: (s.ppid, command_line(s.pid))
        for s in all_processes()
        if s.session == sid and s.alive
    }


def _alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.alive


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((LOOPBACK, port)) == 0


# ---- the script under test --------------------------------------------------------------


class RunScript:
    """scripts/run.sh of a repository copy, in its own session (so Ctrl-C = SIGINT to it)."""

    def __init__(self, repo: Path, env: dict[str, str], workers: int = 2) -> None:
        self.repo = repo
        self.port = free_port()
        self.env = {
            **env,
            "PORT": str(self.port),
            "WORKERS": str(workers),
            "PASSWORD_SCRYPT_N": "1024",
            "PYTHONUNBUFFERED": "1",
        }
        self.output_path = repo / f"run-{self.port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def start(self) -> RunScript:
        """Start the script and wait (bounded) until /healthz answers 200."""
        with open(self.output_path, "ab") as out:
            self.process = subprocess.Popen(
                [str(self.repo / "scripts" / "run.sh")],
                cwd=self.repo,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"run.sh exited {self.process.returncode}:\n{self.output()}")
            try:
                # The script says "serving on" only once it has seen its gunicorn answer.
                if (
                    requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
                    and "serving on" in self.output()
                ):
                    return self
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.1)
        pytest.fail(f"run.sh did not serve /healthz within {START_TIMEOUT}s:\n{self.output()}")

    @property
    def sid(self) -> int:
        assert self.process is not None
        return self.process.pid  # start_new_session: the script leads its own session

    def gunicorn_workers(self, expected: int) -> list[int]:
        """The gunicorn master's worker pids, once there are `expected` of them (bounded)."""
        deadline = time.monotonic() + 10
        workers: list[int] = []
        while time.monotonic() < deadline:
            procs = session_processes(self.sid)
            masters = [
                p for p, (ppid, cmd) in procs.items() if ppid == self.sid and "gunicorn" in cmd
            ]
            workers = [p for p, (ppid, _cmd) in procs.items() if ppid in masters]
            if len(masters) == 1 and len(workers) == expected:
                return workers
            time.sleep(0.1)
        pytest.fail(
            f"expected {expected} gunicorn workers, saw {workers}: {session_processes(self.sid)}"
        )

    def ctrl_c(self) -> int:
        """SIGINT to the whole process group, as a terminal's Ctrl-C; returns the exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run.sh still running {STOP_TIMEOUT}s after Ctrl-C:\n{self.output()}")

    def kill(self) -> None:
        """Last resort for the finally block: SIGKILL whatever is left of the session."""
        if self.process is None:
            return
        for pid in session_processes(self.sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)

    def assert_all_stopped(self, started: list[int]) -> None:
        """Nothing of the session is left, the HTTP port is closed."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            session_processes(self.sid) or any(_alive(p) for p in started)
        ):
            time.sleep(0.1)
        assert session_processes(self.sid) == {}, "processes left after Ctrl-C"
        assert [p for p in started if _alive(p)] == [], "processes left after Ctrl-C"
        assert not _port_open(self.port), "the HTTP port is still open"


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
