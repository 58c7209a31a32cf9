"""The one process toolkit of `make stack`, the tests and the benchmark: a child process with
its log and health check (started, health-checked, stopped, killed), gunicorn as one, free
loopback ports, bounded polling, and what /proc says about processes (Linux).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from deploy import topology

ROOT = topology.DEPLOY_DIR.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class ProcessError(RuntimeError):
    """A process could not be started, or did not become healthy in time."""


def free_port() -> int:
    """A TCP port on the loopback that nobody uses right now, below the ephemeral range.

    Not one the OS picks (bind to port 0): that is an ephemeral port, and outgoing connections
    take ephemeral ports too. A cluster's nodes open dozens to each other while it forms, and
    one could take a port picked for a later part before that part binds it.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 16384), low)
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise ProcessError(f"no free port below {low}")


def _ephemeral_low() -> int:
    """The first port of the range the OS gives outgoing connections (Linux; 32768 else)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until(
    check: Callable[[], object],
    timeout: float = 10.0,
    what: str = "the condition",
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.05,
) -> None:
    """Poll check() until it is truthy; fail after `timeout` s, or at once if `process` ends."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessError(f"{what} exited with code {process.returncode}{_tail(log)}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(interval)
    raise ProcessError(f"{what} not healthy after {timeout:.0f} s ({last!r}){_tail(log)}")


def http_status(url: str) -> int | None:
    """The status GET url answers within 2 s, or None if nothing answers (stdlib only: make
    stack needs no extras)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as error:
        error.close()  # it holds the response
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def http_ok(url: str) -> bool:
    """True when GET url answers 200 within 2 s."""
    return http_status(url) == 200


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


# ---- /proc ------------------------------------------------------------------------------


class Stat(NamedTuple):
    """What this code reads of /proc/<pid>/stat."""

    pid: int
    state: str  # Z: a zombie, X: dead
    ppid: int
    pgrp: int
    session: int
    cpu_ticks: int  # user + system time, in clock ticks

    @property
    def alive(self) -> bool:
        """Not exited (a zombie has: it holds nothing any more)."""
        return self.state not in ("Z", "X")


def proc_stat(pid: int) -> Stat | None:
    """A process's /proc/<pid>/stat, or None if it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return Stat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), ticks)


def all_processes() -> list[Stat]:
    """Every process there is, as /proc shows it now."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        stat = proc_stat(int(entry.name))
        if stat is not None:
            found.append(stat)
    return found


def command_line(pid: int) -> str:
    """A process's command line, its arguments joined by spaces ("" if it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def group_members(pgid: int) -> list[int]:
    """Processes of a process group that have not exited."""
    return sorted(s.pid for s in all_processes() if s.pgrp == pgid and s.alive)


def worker_pids(master: int) -> list[int]:
    """The children of a process, here a gunicorn master's workers."""
    return sorted(s.pid for s in all_processes() if s.ppid == master)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far, in seconds."""
    ticks = sum(stat.cpu_ticks for stat in map(proc_stat, pids) if stat is not None)
    return ticks / os.sysconf("SC_CLK_TCK")


def program(name: str) -> str:
    """The full path of a program; nginx is looked for in sbin too (Debian puts it there)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        package = "redis-server" if name == "redis-server" else name
        raise ProcessError(f"{name} is not installed (apt-get install {package})")
    return path


# ---- a process --------------------------------------------------------------------------


@dataclass
class Process:
    """One child process: its command, environment, log file and health check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    healthy: Callable[[], object]
    stop_signal: int = signal.SIGTERM
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def launch(self) -> None:
        """Start the process in a process group of its own, appending to its log; no wait."""
        self._close_log()  # a restart after kill()
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the parts in order; and a test can kill one part with all its workers.
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the health check (bounded); fail early if the process ends."""
        wait_until(self.healthy, timeout, self.name, self.process, self.log)

    def start(self, timeout: float = START_TIMEOUT) -> Process:
        """Launch, then wait until healthy; returns itself."""
        self.launch()
        self.wait_healthy(timeout)
        return self

    def __enter__(self) -> Process:
        """Start; stopped again if it never becomes healthy."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The process and its children (a gunicorn master and its workers)."""
        return [self.process.pid, *worker_pids(self.process.pid)] if self.process else []

    def logs(self) -> str:
        """Everything the process has written to its log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal_group(self, sig: int) -> None:
        """Send a signal to the whole process group (the master and its workers)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole group and wait until none of it is left (Linux: /proc)."""
        if self.process is None:
            return
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        # The workers die with the master, but are reaped by someone else: wait until none
        # holds the listening socket any more, so a connection after kill() is refused.
        pgid = self.process.pid
        wait_until(lambda: not group_members(pgid), 10, f"the end of {self.name}'s processes")
        self._close_log()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully; SIGKILL the group if it is still there after `timeout` s."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(self.stop_signal)
                self.signal_group(signal.SIGCONT)  # a paused part must wake up to stop
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.signal_group(signal.SIGKILL)
                    self.process.wait(timeout=10)
            self.signal_group(signal.SIGKILL)  # a worker that outlived its master
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class Gunicorn(Process):
    """A WSGI app (ours by default) under gunicorn with deploy/gunicorn.conf.py on a loopback
    port; healthy once `ready()` (GET `ready_path` answers 200: /healthz, or /readyz where
    Redis must take writes too)."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log: Path,
        workers: int = 2,
        port: int | None = None,
        app: str = topology.WSGI_APP,
        cwd: Path = ROOT,
        ready_path: str = "/healthz",
    ) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.ready_path = ready_path
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            topology.GUNICORN_CONF,  # relative: the conf of the tree in `cwd`
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(workers),
            app,
        ]
        env = {**env, "PYTHONUNBUFFERED": "1"}
        super().__init__(name, argv, env, log, self.ready, cwd=cwd)

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{LOOPBACK}:{self.port}"

    def ready(self) -> bool:
        """True once the app answers its ready path with 200."""
        return http_ok(f"{self.url}{self.ready_path}")

    def start(self, timeout: float = START_TIMEOUT) -> Gunicorn:
        """Launch, then wait until every worker can answer; returns itself."""
        super().start(timeout)
        return self

    def __enter__(self) -> Gunicorn:
        super().__enter__()
        return self
