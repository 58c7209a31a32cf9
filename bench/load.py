"""Load from a separate process: wrk when it is on PATH, else bounded Python processes.

Every request carries the bearer key and a fresh X-Forwarded-For from a pool of 10.a.b.c
addresses (header values only: all traffic goes to 127.0.0.1), as behind a load balancer.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

WRK_SCRIPT = Path(__file__).with_name("wrk_script.lua")
# 65,536 addresses: at 10,000 req/s each one is reused about 9 times a minute, far below 200.
ADDRESS_POOL = 1 << 16
REQUEST_TIMEOUT = 5.0
MAX_REQUESTS_PER_SECOND = 20_000  # a hard bound on the Python generator's loop, per process


def address(i: int) -> str:
    """The i-th address of the pool, 10.a.b.c (the same formula as wrk_script.lua)."""
    i %= ADDRESS_POOL
    return f"10.{(i >> 16) % 256}.{(i >> 8) % 256}.{i % 256}"


def percentile(sorted_values: list[float], pct: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Target:
    """What one row is asked for: a URL and the key presented with it."""

    url: str
    key: str


@dataclass
class RoundResult:
    """One timed round of one row."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    server_cpu: float = 0.0  # seconds of CPU the row's gunicorn used (filled in by bench.run)
    redis_cpu: float = 0.0  # seconds of CPU redis-server used meanwhile

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_us(self, seconds: float) -> float:
        """CPU seconds spread over this round's requests, in microseconds per request."""
        return 1e6 * seconds / self.requests if self.requests else 0.0

    @property
    def failures(self) -> int:
        """Responses of 400 or more plus requests that got no response at all."""
        return sum(n for code, n in self.statuses.items() if code >= 400) + self.socket_errors


class LoadGenerator(Protocol):
    """Drives one round of load against a target."""

    name: str

    def run(self, target: Target, seconds: float, first_address: int) -> RoundResult:
        """Load target for `seconds`, starting at address index first_address."""
        ...

    def close(self) -> None:
        """Release what the generator holds."""
        ...


class Wrk:
    """wrk with a Lua script setting the key and a fresh X-Forwarded-For per request."""

    name = "wrk"

    def __init__(self, connections: int, threads: int) -> None:
        self.binary = shutil.which("wrk") or "wrk"
        self.connections, self.threads = connections, min(threads, connections)

    def run(self, target: Target, seconds: float, first_address: int) -> RoundResult:
        """Run wrk once and read the JSON line its done() prints."""
        command = [
            self.binary,
            "-t",
            str(self.threads),
            "-c",
            str(self.connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            f"{REQUEST_TIMEOUT:.0f}s",
            "-s",
            str(WRK_SCRIPT),
            target.url,
            "--",
            target.key,
            str(ADDRESS_POOL),
            str(first_address),
            str(self.threads),
        ]
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
        line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        statuses: Counter[int] = Counter()
        for status, n in data["statuses"]:
            statuses[status] += n
        return RoundResult(
            data["requests"],
            data["duration_us"] / 1e6,
            data["p50_us"] / 1000,
            data["p99_us"] / 1000,
            dict(statuses),
            data["socket_errors"],
        )

    def close(self) -> None:
        """Nothing to release."""


def _request_bytes(target: Target, i: int) -> bytes:
    """The i-th GET of a target, as raw HTTP/1.1 (built once per request, no client library)."""
    parts = urlsplit(target.url)
    return (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {target.key}\r\nX-Forwarded-For: {address(i)}\r\n"
        "\r\n"
    ).encode()


def _get(host: str, port: int, payload: bytes) -> int:
    """One GET on a new connection (sync gunicorn workers close it after each response).

    A raw socket rather than http.client: it costs the load process half the CPU, which on
    a small machine is CPU taken from the server under test.
    """
    with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(body) >= length:
                    break
    if not data.startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP response: {data[:40]!r}")
    return int(data[9:12])


def _content_length(head: bytes) -> int | None:
    """The Content-Length of a response head, if it has one."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def _worker(
    target: Target, start_at: float, seconds: float, first: int
) -> tuple[int, float, list[float], dict[int, int], int]:
    """One load process: sequential requests until the deadline (or the request bound)."""
    parts = urlsplit(target.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    deadline, bound = began + seconds, int(seconds * MAX_REQUESTS_PER_SECOND)
    i = 0
    while i < bound and time.perf_counter() < deadline:
        payload = _request_bytes(target, first + i)
        t0 = time.perf_counter()
        try:
            statuses[_get(host, port, payload)] += 1
            latencies.append(time.perf_counter() - t0)
        except (OSError, ValueError):
            errors += 1
        i += 1
    return i, time.perf_counter() - began, latencies, dict(statuses), errors


class PythonLoad:
    """The fallback: `processes` separate processes, each one connection at a time."""

    name = "python"

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pool = multiprocessing.get_context("spawn").Pool(processes)

    def run(self, target: Target, seconds: float, first_address: int) -> RoundResult:
        """Start every process at the same instant, then merge their counts and latencies."""
        start_at = time.time() + 0.2
        stride = ADDRESS_POOL // self.processes
        jobs = [
            (target, start_at, seconds, first_address + p * stride) for p in range(self.processes)
        ]
        parts = self.pool.starmap_async(_worker, jobs).get(timeout=seconds + 60)
        latencies = sorted(x for part in parts for x in part[2])
        statuses: Counter[int] = Counter()
        for part in parts:
            statuses.update(part[3])
        done = sum(len(part[2]) for part in parts)
        elapsed = max(part[1] for part in parts)
        return RoundResult(
            done,
            elapsed,
            percentile(latencies, 50) * 1000,
            percentile(latencies, 99) * 1000,
            dict(statuses),
            sum(part[4] for part in parts),
        )

    def close(self) -> None:
        """Stop the worker processes (at once: an interrupted run must not wait for them)."""
        self.pool.terminate()
        self.pool.join()


def sequential(target: Target, count: int, first_address: int) -> Counter[int]:
    """`count` requests one after another from this process; their status codes."""
    parts = urlsplit(target.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    statuses: Counter[int] = Counter()
    for i in range(count):
        statuses[_get(host, port, _request_bytes(target, first_address + i))] += 1
    return statuses
