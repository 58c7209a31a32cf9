"""Writes that must survive a failover: run a script, then wait until replicas hold it.

Redis replicates asynchronously: a write the primary acknowledged can be missing on the
replica that Sentinel promotes after the primary dies. For a revocation that would bring a
revoked key back to life, so the few writes that must not be lost (revoke, create, plan
change) are followed by WAIT, which blocks until enough replicas acknowledge every write
made *on the same connection*. That is why this module holds one pooled connection for the
script and the WAIT instead of going through redis-py's per-command connection handling.

WAITAOF (Redis 7.2+) would also prove the replicas fsynced their append-only file; it is not
used: the servers this is tested against are 7.0, and an untested durability claim is worse
than none (docs/deploy.md, "High availability").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from store.errors import SLOT_MAP_STALE

if TYPE_CHECKING:
    from store.client import Storage

# Extra seconds granted to a WAIT reply on top of the wait itself (the round trip).
REPLY_MARGIN_SECONDS = 0.5


@dataclass(frozen=True)
class ReplicaWait:
    """How long, and for how many replicas, a durable write waits (REVOKE_* settings).

    min_replicas None: 1 when the primary has replicas, 0 when it has none (a single Redis).
    """

    min_replicas: int | None = None
    wait_ms: int = 500


@dataclass(frozen=True)
class Replication:
    """How many replicas had to confirm a write, and how many did."""

    needed: int
    confirmed: int

    @property
    def confirmed_enough(self) -> bool:
        """Whether the write is known to survive the loss of the primary."""
        return self.confirmed >= self.needed


def run_replicated(
    storage: Storage,
    script: str,
    keys: list[str],
    args: list[object],
) -> tuple[Any, Replication]:
    """Run a registered script, then WAIT for replicas (storage.wait) on the same connection."""
    if storage.embedded:
        return storage.run(script, keys, args), Replication(0, 0)
    registered = storage.scripts[script]
    pool = _pool_for(storage, keys[0])
    connection = pool.get_connection()
    try:
        result, role = _script_and_role(connection, registered, keys, args)
        replicas = len(role[2]) if role and role[0] == "master" else 0
        policy = storage.wait
        needed = (1 if replicas else 0) if policy.min_replicas is None else policy.min_replicas
        if needed == 0:
            return result, Replication(0, replicas)
        connection.send_command("WAIT", needed, policy.wait_ms)
        timeout = policy.wait_ms / 1000 + (connection.socket_timeout or 0) + REPLY_MARGIN_SECONDS
        confirmed = int(connection.read_response(timeout=timeout))
        return result, Replication(needed, confirmed)
    except BaseException as exc:
        # Whatever was half-read stays on this socket: never hand it to another caller.
        connection.disconnect()
        if storage.cluster and isinstance(exc, SLOT_MAP_STALE):
            storage.refresh_slot_map()
            raise ConnectionError(f"cluster topology changed: {type(exc).__name__}") from exc
        raise
    finally:
        pool.release(connection)


def _pool_for(storage: Storage, key: str) -> Any:
    """The connection pool of the primary that holds `key` (on Cluster: its slot's node; a
    bare WAIT through the cluster client would go to an arbitrary node and count wrongly)."""
    if not storage.cluster:
        return storage.redis.connection_pool
    node = storage.redis.get_node_from_key(key, replica=False)
    if node.redis_connection is None:  # not connected yet: the cluster client makes it
        storage.redis.nodes_manager.create_redis_connections([node])
    return node.redis_connection.connection_pool


def _script_and_role(connection: Any, registered: Any, keys: list[str], args: list[object]):
    """Send the script and ROLE in one round trip; EVAL once if the server lost the script."""
    for command in (("EVALSHA", registered.sha), ("EVAL", registered.script)):
        connection.send_packed_command(
            connection.pack_commands([(*command, len(keys), *keys, *args), ("ROLE",)])
        )
        try:
            result = connection.read_response()
        except NoScriptError:
            connection.read_response()  # ROLE's reply, then try again with the source
            continue
        except ResponseError:
            connection.read_response()
            raise
        return result, connection.read_response()
    raise RuntimeError("the server refused both EVALSHA and EVAL")  # pragma: no cover
