"""Real processes for the tests: redis-server and gunicorn, each on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll check() until it returns truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - the process may not be up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting: {last_error!r}")


class RedisServer:
    """A redis-server of the tests' own, on a free port under a temporary directory."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        self.binary, self.directory, self.appendonly = binary, directory, appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A fresh client with short timeouts."""
        return redis.Redis(host=LOOPBACK, port=self.port, decode_responses=True,
                           socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> RedisServer:
        """Start (or restart) the server on the same port and directory."""
        args = [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
                "--dir", str(self.directory), "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client().ping())
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a clean shutdown)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """Kill the server without letting it flush anything (SIGKILL)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused server (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class Gunicorn:
    """The real app under gunicorn with several workers, logging to a file."""

    def __init__(self, redis_url: str, log_path: Path, workers: int = 4,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.workers = workers
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key-for-gunicorn-tests",
            "GENMB_ENV": "development",
            "PASSWORD_SCRYPT_N": "1024",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Gunicorn:
        """Start gunicorn and wait until every worker can answer."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
             "--workers", str(self.workers), "--bind", f"{LOOPBACK}:{self.port}",
             "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=2).ok, timeout=30)
        return self

    def stop(self) -> None:
        """Stop gunicorn gracefully and close its log."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def logs(self) -> str:
        """Everything gunicorn and the app have written so far."""
        return self.log_path.read_text(errors="replace")
