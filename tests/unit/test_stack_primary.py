"""Stack.primary_name after a failover: a sentinel that did not lead it still names the old,
dead primary for a moment (flagged down); the stack must skip it, as a redis-py client does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from deploy.stack import Stack, StackError


class FakeSentinel:
    """A sentinel's answer to SENTINEL MASTER, or a refused connection."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state = state

    def __enter__(self) -> FakeSentinel:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def sentinel_master(self, service: str) -> dict[str, Any]:
        if self.state is None:
            raise redis.ConnectionError("refused")
        return self.state

    def sentinel_get_master_addr_by_name(self, service: str) -> tuple[str, int]:
        """What a sentinel names, down or not (no flags in this answer)."""
        state = self.sentinel_master(service)
        return "127.0.0.1", state["port"]


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    """A Sentinel stack, not started."""
    return Stack(tmp_path, env={}, redis_topology="sentinel")


def answer(stack: Stack, *answers: tuple[str, bool] | None) -> None:
    """Make the stack's sentinels, in order, name (node, flagged down) or refuse (None)."""
    states = [
        None if a is None else {"port": stack.node_ports[a[0]], "is_sdown": a[1], "is_odown": False}
        for a in answers
    ]
    by_port = dict(zip(stack.sentinel_ports.values(), states, strict=True))
    stack.redis_client = lambda timeout=2.0, port=None: FakeSentinel(by_port[port])  # type: ignore[method-assign,assignment]


def test_a_lagging_sentinel_naming_the_dead_primary_is_skipped(stack: Stack) -> None:
    old, new = list(stack.node_ports)[:2]
    answer(stack, None, (old, True), (new, False))
    assert stack.primary_name() == new


def test_the_first_sentinel_that_finds_its_primary_up_is_believed(stack: Stack) -> None:
    first, second = list(stack.node_ports)[:2]
    answer(stack, (first, False), (second, False), None)
    assert stack.primary_name() == first


def test_no_sentinel_finding_a_primary_up_is_an_error(stack: Stack) -> None:
    dead = next(iter(stack.node_ports))
    answer(stack, (dead, True), None, None)
    with pytest.raises(StackError, match="up"):
        stack.primary_name()
