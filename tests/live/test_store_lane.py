"""Issue #15: Storage.run's Lane (one connection set aside for the gate's EVALSHA) fails and
recovers as redis-py's own path does; on a real redis-server of the tests' own."""

from __future__ import annotations

from store import gate


def check(storage, limit: int = 5):
    """One anonymous gate call for 10.0.0.1: its RateState."""
    return gate.check(storage, "10.0.0.1", limit, 60_000, None, "pro business", False).rate


def test_scripts_go_over_the_lane_to_the_configured_server(storage, redis_server):
    """The lane connects where the client does (never a default address) and counts once."""
    assert check(storage).remaining == 4
    connection = storage.lane.connection
    assert connection is not None and connection.port == redis_server.port
    assert check(storage).remaining == 3
    assert storage.lane.connection is connection


def test_a_dropped_connection_is_retried_once(storage, rdb):
    """Redis closed the lane's connection (a restart, a failover): the next call reconnects
    and counts exactly once."""
    assert check(storage).remaining == 4
    rdb.client_kill_filter(skipme=True)
    assert check(storage).remaining == 3


def test_a_server_without_the_script_gets_it_loaded_and_counts_once(storage, rdb):
    """SCRIPT FLUSH (as after a restart): SCRIPT LOAD, then the one EVALSHA that counts."""
    assert check(storage).remaining == 4
    rdb.script_flush()
    assert check(storage).remaining == 3


def test_a_busy_lane_sends_through_the_client(storage):
    """Another thread holds the lane: the call goes through redis-py's pool instead."""
    with storage.lane.busy:
        assert check(storage).remaining == 4
    assert storage.lane.connection is None


def test_a_forked_child_opens_its_own_connection(storage):
    """A connection inherited over fork() is never shared with the parent."""
    check(storage)
    inherited = storage.lane.connection
    storage.lane.pid = -1  # as seen from a child process
    check(storage)
    assert storage.lane.connection is not inherited
