"""Issue #19, item 2: `make run` (scripts/run.sh) and `make stack` tell the truth.

A bad setting or a busy address ends the script with a non-zero code and never a "serving on"
line; a refused second run leaves the running instance's var/run.env alone; BIND is honoured.
Each test runs the script from a copy of the repository (tests/stack/conftest.py's fixtures).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from deploy.processes import LOOPBACK, free_port
from tests.stack.helpers import require_nginx, start_in_own_session
from tests.stack.run_script import RunScript

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]


def _run(repo, env: dict[str, str], command: str = "run") -> subprocess.CompletedProcess[str]:
    """run.sh (`make run`), or `python -m deploy.stack` (`make stack`) with command="stack",
    in the repository copy, to its end (it must end by itself: nothing is served); stdout
    and stderr together."""
    argv = {
        "run": [str(repo / "scripts" / "run.sh")],
        "stack": [str(repo / ".venv" / "bin" / "python"), "-m", "deploy.stack"],
    }[command]
    return subprocess.run(
        argv,
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_bad_setting_exits_non_zero_with_one_line(repo, base_env):
    """COST_CODEGEN=-5: exit 2, the setting named once, no traceback, no "serving on"."""
    env = {**base_env, "REDIS_URL": "memory://", "PORT": str(free_port()), "COST_CODEGEN": "-5"}
    done = _run(repo, env)
    assert done.returncode == 2, done.stdout
    assert done.stdout.count("genmb: cannot start: COST_CODEGEN='-5'") == 1, done.stdout
    assert "error: gunicorn exited" not in done.stdout  # the one line says it all
    assert "serving on" not in done.stdout
    assert "Traceback" not in done.stdout
    assert not (repo / "var" / "run.env").exists()


def test_port_held_by_another_server_is_refused(repo, base_env):
    """Something else listens on PORT: refused at once, before "serving on"."""
    with socket.socket() as other:
        other.bind((LOOPBACK, 0))
        other.listen()
        port = other.getsockname()[1]
        done = _run(repo, {**base_env, "REDIS_URL": "memory://", "PORT": str(port)})
    assert done.returncode != 0, done.stdout
    assert f"127.0.0.1:{port} is already in use" in done.stdout
    assert "serving on" not in done.stdout


def test_second_run_is_refused_and_keeps_the_first_ones_run_env(repo, base_env, scripts):
    """A second `make run` on the running one's port exits non-zero and leaves its
    var/run.env (the operator CLI's settings) in place."""
    first = RunScript(repo, base_env)
    scripts.append(first)
    first.start()
    run_env = repo / "var" / "run.env"
    before = run_env.read_text()
    assert "REDIS_URL=unix://" in before
    done = _run(repo, {**first.env})
    assert done.returncode != 0, done.stdout
    assert "serving on" not in done.stdout
    assert run_env.read_text() == before
    assert requests.get(f"{first.url}/healthz", timeout=5).status_code == 200
    assert first.ctrl_c() == 0
    assert not run_env.exists()  # the first one's own, removed when it stops


def test_bind_is_honoured(repo, base_env, scripts):
    """BIND wins over PORT, as documented; "serving on" names it."""
    run = RunScript(repo, {**base_env, "REDIS_URL": "memory://"})
    scripts.append(run)
    bind_port = free_port()
    run.env["BIND"] = f"{LOOPBACK}:{bind_port}"
    run.port = bind_port  # start() waits on this port's /healthz
    run.start()
    assert f"serving on http://{LOOPBACK}:{bind_port}" in run.output()
    assert run.ctrl_c() == 0


def test_stack_on_a_busy_port_fails_before_serving(repo, base_env):
    """`make stack` (python -m deploy.stack) with PORT held by another server: it fails at
    once, before "serving on", and starts nothing (nginx used to retry the port while the
    other server answered its health check)."""
    with socket.socket() as other:
        other.bind((LOOPBACK, 0))
        other.listen()
        port = other.getsockname()[1]
        done = _run(repo, {**base_env, "PORT": str(port), "PASSWORD_SCRYPT_N": "1024"}, "stack")
    assert done.returncode == 1, done.stdout
    assert f"{LOOPBACK}:{port} is already in use" in done.stdout
    assert "serving on" not in done.stdout
    assert not (repo / "var" / "stack" / "redis.log").exists()  # nothing was started


def test_stack_refuses_a_bad_worker_count_with_one_line(repo, base_env):
    """WORKERS=abc: one line naming it, exit 2 (was a bare int() ValueError)."""
    done = _run(repo, {**base_env, "PORT": str(free_port()), "WORKERS": "abc"}, "stack")
    assert done.returncode == 2, done.stdout
    assert done.stdout.strip() == (
        "genmb: cannot start: WORKERS='abc' is not allowed (not a whole number): allowed is 1–64"
    )


def test_stack_refuses_a_bad_app_setting_before_starting_anything(repo, base_env):
    """COST_CODEGEN=-5 under `make stack`: one line, exit 2, no Redis started."""
    done = _run(repo, {**base_env, "PORT": str(free_port()), "COST_CODEGEN": "-5"}, "stack")
    assert done.returncode == 2, done.stdout
    assert done.stdout.strip() == (
        "genmb: cannot start: COST_CODEGEN='-5' is not allowed: allowed is 0–1000000"
    )
    assert not (repo / "var" / "stack").exists()


@contextmanager
def _port_taken_once(port: int, process: subprocess.Popen, out_path, ready) -> Iterator[None]:
    """As soon as ready() holds (bounded, the start command still running), another server
    takes the port and answers 200 to every connection, until the block ends."""
    other = socket.socket()
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert time.monotonic() < deadline and process.poll() is None, out_path.read_text()
            time.sleep(0.005)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind((LOOPBACK, port))
        other.listen()
        threading.Thread(target=_answer_http, args=(other,), daemon=True).start()
        yield
    finally:
        other.close()


def _answer_http(listener: socket.socket) -> None:
    """Another server: 200 to every connection, until the listener closes."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_address_taken_after_the_check_is_not_reported_as_ours(repo, base_env):
    """Another server takes PORT after run.sh found it free and before its gunicorn binds (two
    `make run` started at the same moment): that server answering is not ours, so no "serving
    on", a non-zero exit once gunicorn gives up, and the running one's var/run.env is left
    alone (the refused run used to announce the other server, write var/run.env over it and
    delete it on the way out)."""
    port = free_port()
    run_env = repo / "var" / "run.env"
    run_env.parent.mkdir(mode=0o700, exist_ok=True)
    run_env.write_text("REDIS_URL=unix:///the/running/one\n")  # the running instance's
    out_path = repo / "run.out"
    env = {**base_env, "REDIS_URL": "memory://", "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    script = start_in_own_session([str(repo / "scripts" / "run.sh")], repo, env, out_path)
    # run.sh warns about the embedded store after its check, just before gunicorn starts:
    # take the address then, while gunicorn is still starting Python.
    warned = lambda: "REDIS_URL=memory://" in out_path.read_text(errors="replace")  # noqa: E731
    try:
        with _port_taken_once(port, script, out_path, warned):
            code = script.wait(timeout=60)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
    output = out_path.read_text(errors="replace")
    assert code != 0, output
    assert "serving on" not in output
    assert run_env.read_text() == "REDIS_URL=unix:///the/running/one\n"
    assert list((repo / "var").glob("ready.*")) == []


def test_stack_port_taken_after_the_check_is_not_reported_as_ours(repo, base_env):
    """`make stack`: another server takes PORT after the stack found it free (it starts Redis
    and the app instances first, seconds): its 200 on /healthz is not nginx's, so no "serving
    on" and exit 1 once nginx gives up the port (it used to announce the other server)."""
    require_nginx()
    port = free_port()
    out_path = repo / "stack.out"
    env = {**base_env, "PORT": str(port), "WORKERS": "1", "PYTHONUNBUFFERED": "1"}
    command = [str(repo / ".venv" / "bin" / "python"), "-m", "deploy.stack"]
    stack = start_in_own_session(command, repo, env, out_path)
    # stack.env is written after the port check, before Redis starts.
    written = (repo / "var" / "stack" / "stack.env").exists
    try:
        with _port_taken_once(port, stack, out_path, written):
            deadline = time.monotonic() + 90  # until it ends, or says "serving on" and stays
            while stack.poll() is None and time.monotonic() < deadline:
                if "serving on" in out_path.read_text(errors="replace"):
                    break
                time.sleep(0.1)
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)
            stack.wait(timeout=60)
    output = out_path.read_text(errors="replace")
    assert stack.returncode == 1, output
    assert "serving on" not in output
    assert "nginx exited" in output, output
