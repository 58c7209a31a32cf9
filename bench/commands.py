"""Counting the Redis commands a row sends per request, with MONITOR (not by assumption)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import redis

from bench.load import Target, sequential

# A client announcing itself on a new pooled connection, and our own stop marker.
SETUP_COMMANDS = frozenset({"CLIENT", "HELLO", "SELECT", "ECHO", "AUTH"})


class CommandRecorder:
    """Records every command clients send to Redis; a script's own calls (lua) are left out."""

    STOP = "genmb-bench-monitor-stop"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.commands: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        """Collect entries until our own stop marker comes through."""
        with self.client.monitor() as monitor:
            self._ready.set()
            for entry in monitor.listen():
                if self.STOP in entry["command"]:
                    return
                self.commands.append(entry)

    def __enter__(self) -> CommandRecorder:
        """Start monitoring; returns once MONITOR is in effect."""
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.1)  # MONITOR is registered once its reply arrives
        return self

    def __exit__(self, *exc: object) -> None:
        """Send the stop marker and wait for the monitor thread."""
        self.client.echo(self.STOP)
        self._thread.join(10)

    def sent_by_clients(self) -> Counter[str]:
        """Command names as clients sent them, connection set-up excluded."""
        names = Counter(
            e["command"].split()[0].upper() for e in self.commands if e.get("client_type") != "lua"
        )
        for name in SETUP_COMMANDS:
            names.pop(name, None)
        return names


def count_per_request(
    client: redis.Redis, target: Target, requests: int, first_address: int
) -> tuple[float, dict[str, int], dict[int, int]]:
    """(commands per request, total by command name, status codes) over `requests` GETs.

    The caller warms the row up first, so every worker already has its pooled connection
    and its scripts loaded; sequential requests keep other traffic out of the count.
    """
    with CommandRecorder(client) as recorder:
        statuses = sequential(target, requests, first_address)
    sent = recorder.sent_by_clients()
    return sum(sent.values()) / requests, dict(sent), dict(statuses)
