"""The processes of `make stack` (deploy/stack.py): how one is started, health-checked,
stopped and killed, and the small helpers around that (free ports, bounded polling).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from deploy import topology

ROOT = topology.DEPLOY_DIR.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class StackError(RuntimeError):
    """A part of the stack could not be started."""


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
    raise StackError(f"no free port below {low}")


def _ephemeral_low() -> int:
    """The first port of the range the OS gives outgoing connections (Linux; 32768 else)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll check() until it is truthy; fail after `timeout` s, or at once if `process` ends."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}{_tail(log)}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.05)
    raise StackError(f"{what} not healthy after {timeout:.0f} s ({last!r}){_tail(log)}")


def http_ok(url: str) -> bool:
    """True when GET url answers 200 within 2 s (stdlib only: make stack needs no extras)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


@dataclass
class Part:
    """One process of the stack: its command, environment, log file and health check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    healthy: Callable[[], object]
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process in a process group of its own, appending to its log."""
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the parts in order; and a test can kill one part with all its workers.
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the health check (bounded); fail early if the process ends."""
        wait_until(self.healthy, timeout, self.name, self.process, self.log)

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        """Send a signal to the part's whole process group (the master and its workers)."""
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
        wait_until(
            lambda: not _live_members(self.process.pid),
            10,  # type: ignore[union-attr]
            f"the end of {self.name}'s processes",
        )

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
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def program(name: str) -> str:
    """The full path of a program; nginx is looked for in sbin too (Debian puts it there)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        package = "redis-server" if name == "redis-server" else name
        raise StackError(f"{name} is not installed (apt-get install {package})")
    return path


def _live_members(pgid: int) -> list[int]:
    """Processes of a process group that have not exited (zombies have: they hold nothing)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members
