"""Helpers shared by live-tier modules: a Redis key's record count, a GitHub stand-in (its
signing key, its keys document on a loopback port, a report body) and steady traffic over
several gunicorn instances during a failover."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy.processes import LOOPBACK, Gunicorn

# ---- what Redis holds ----------------------------------------------------------------


LENGTH_COMMANDS = {
    "list": "LLEN",
    "zset": "ZCARD",
    "hash": "HLEN",
    "set": "SCARD",
    "stream": "XLEN",
}


def entries(rdb, key: str) -> int:
    """How many records a key holds, whatever its Redis type (0 when it does not exist).

    A string is one record (a counter, say); any other type is measured by its length.
    """
    kind = rdb.type(key)
    if kind == "none":
        return 0
    if kind == "string":
        return 1
    if kind not in LENGTH_COMMANDS:
        pytest.fail(f"{key} is a {kind}: teach entries() its length command")
    return rdb.execute_command(LENGTH_COMMANDS[kind], key)


# ---- GitHub secret scanning, stood in for ---------------------------------------------


PATH = "/api/secret-scanning/github"
FOUND_AT = "https://github.com/octocat/hello/blob/abc123/deploy.sh"


class Signer:
    """An ECDSA P-256 key pair of the test's own, published under an identifier."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        self.private = ec.generate_private_key(ec.SECP256R1())

    def entry(self, current: bool = True) -> dict:
        """Its entry in a keys document."""
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"key_identifier": self.identifier, "key": pem.decode(), "is_current": current}

    def headers(self, body: bytes) -> dict[str, str]:
        """The two signature headers for this raw body (base64 of DER)."""
        der = self.private.sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": self.identifier,
            "Github-Public-Key-Signature": base64.b64encode(der).decode(),
        }


class KeysServer:
    """GitHub's keys endpoint, on a free loopback port: a document the test can change."""

    def __init__(self) -> None:
        self.document: dict = {"public_keys": []}
        self.status = 200
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(dict(self.headers))
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}/meta/public_keys/secret"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, *entries: dict) -> None:
        """Serve a document holding these key entries."""
        self.document = {"public_keys": list(entries)}

    def __enter__(self) -> KeysServer:
        """Start serving."""
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def report(*tokens: str, url: str = FOUND_AT, source: str = "Content") -> bytes:
    """A report body as GitHub sends it (compact JSON)."""
    items = [{"token": t, "type": "genmb_api_key", "url": url, "source": source} for t in tokens]
    return json.dumps(items, separators=(",", ":")).encode()


# ---- load across a failover ------------------------------------------------------------


LOAD_THREADS = 6
MAX_REQUESTS_PER_THREAD = 3000  # a bound, never reached in a healthy run
REQUESTS_PER_ADDRESS = 150  # below the 200/min window: the load is never rate limited


@dataclass
class Load:
    """Steady authenticated traffic over both instances, recording every answer."""

    instances: list[Gunicorn]
    key: str
    network: int = 10  # first octet of the forwarded addresses: two loads must not share them
    started: float = field(default_factory=time.monotonic)
    answers: list[tuple[float, int, int, str]] = field(default_factory=list)  # t, app, status, code
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, thread: int) -> None:
        """One client: GET /api/me with the key, alternating instances, until stopped."""
        for n in range(MAX_REQUESTS_PER_THREAD):
            if self.stop.is_set():
                return
            index = n % len(self.instances)
            # A fresh address every REQUESTS_PER_ADDRESS requests (through the trusted proxy
            # header): the per-IP window never refuses this load.
            address = f"{self.network}.{thread}.{n // REQUESTS_PER_ADDRESS % 250}.1"
            try:
                r = requests.get(
                    f"{self.instances[index].url}/api/me",
                    timeout=5,
                    headers={"Authorization": f"Bearer {self.key}", "X-Forwarded-For": address},
                )
                code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
                status = r.status_code
            except requests.RequestException as exc:
                status, code = 0, type(exc).__name__
            self.answers.append((time.monotonic(), index, status, code))

    def __enter__(self) -> Load:
        self.pool = ThreadPoolExecutor(LOAD_THREADS)
        self.futures = [self.pool.submit(self.run, t) for t in range(LOAD_THREADS)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for future in self.futures:
            future.result(timeout=30)
        self.pool.shutdown()

    def since(self, moment: float) -> list[tuple[float, int, int, str]]:
        """Answers to requests that ended after `moment`."""
        return [a for a in self.answers if a[0] >= moment]


@dataclass(frozen=True)
class Recovery:
    """When one instance's answers failed and came back, in seconds after the kill."""

    first_failure: float  # the first answer that was not a 200 (0 when there was none)
    last_failure: float  # the last one
    first_ok: float  # the first 200 after the last failure: service is back


def recovery(answers: list[tuple[float, int, int, str]], killed_at: float) -> Recovery:
    """Read a Load's answers (of one instance, ended after `killed_at`). An answer in flight at
    the kill may still be a 200 before the outage shows: it does not count as recovered; the
    first 200 after the last failure does (inf when there is none)."""
    failures = [a[0] for a in answers if a[2] != 200]
    first, last = min(failures, default=killed_at), max(failures, default=killed_at)
    back = min((a[0] for a in answers if a[2] == 200 and a[0] > last), default=float("inf"))
    return Recovery(first - killed_at, last - killed_at, back - killed_at)


def each_instance_back(
    after: list[tuple[float, int, int, str]], instances: int, killed_at: float, within: float
) -> list[list[tuple[float, int, int, str]]]:
    """Every instance came back by itself: for each, its answers since the kill, printed as a
    Recovery, with the first 200 after its last failure no later than `within` seconds after
    the kill. Returns those answers, by instance."""
    by_instance = []
    for instance in range(instances):
        mine = [a for a in after if a[1] == instance]
        back = recovery(mine, killed_at)
        print(
            f"instance {instance}: first 503 at {back.first_failure:.2f} s, last 503 at "
            f"{back.last_failure:.2f} s, first 200 after it at {back.first_ok:.2f} s after the "
            f"kill; answers after the kill {Counter(a[2] for a in mine)}"
        )
        assert back.first_ok <= within, (instance, back)
        by_instance.append(mine)
    return by_instance
