"""Counting the Redis commands a row sends per request, with MONITOR (not by assumption)."""

from __future__ import annotations

import redis

from bench.load import Target, sequential
from tests.servers import CommandRecorder


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
