"""Counting the Redis commands a row sends per request, with MONITOR on every primary (not by
assumption), and timing the one command a cold owner cache adds."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.load import Target, sequential
from deploy.local_redis import NodeRecorders
from store import apikeys
from store.client import connect
from store.names import KeyNames


def count_per_request(
    server: Any, target: Target, requests: int, first_address: int
) -> tuple[float, dict[str, int], dict[str, dict[str, int]], dict[int, int]]:
    """(commands per request, total by command name, the same per primary, status codes) over
    `requests` GETs; `server` is a RedisServer, SentinelGroup or ClusterGroup.

    The caller warms the row up first, so every worker already has its pooled connections,
    its owner cache and its scripts loaded; sequential requests keep other traffic out.
    """
    with NodeRecorders(server) as recorders:
        statuses = sequential(target, requests, first_address)
    by_node = {
        f"{r.client.connection_pool.connection_kwargs['port']}": dict(r.sent_by_clients())
        for r in recorders.recorders
    }
    sent = recorders.sent_by_clients()
    return sum(sent.values()) / requests, dict(sent), by_node, dict(statuses)


def owner_lookup_us(redis_url: str, raw_key: str, count: int) -> dict[str, float]:
    """The round trip of `GET <prefix>:keyowner:<digest>`, what a worker's first sight of a key
    costs on top of a warm request: median and 90th percentile in µs over `count` GETs, from
    a client made as the app makes it (store.client.connect, after one untimed GET)."""
    client = connect(redis_url, 2.0)
    name = KeyNames().key_owner(apikeys.digest(raw_key))
    if client.get(name) is None:
        raise RuntimeError(f"no owner index {name} on {redis_url.split('@')[-1]}")
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        client.get(name)
        times.append((time.perf_counter() - t0) * 1e6)
    client.close()
    times.sort()
    return {"p50_us": statistics.median(times), "p90_us": times[int(0.9 * len(times))]}
