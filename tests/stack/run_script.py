"""`make run`'s script under test (scripts/run.sh of a repository copy, in a session of its own)
and what /proc says about the processes of that session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from deploy.processes import LOOPBACK, all_processes, command_line, free_port, proc_stat

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


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
