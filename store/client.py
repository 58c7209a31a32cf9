"""The one Redis client per process, its Lua scripts and the key names, bundled as Storage."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoScriptError
from redis.retry import Retry
from redis.sentinel import Sentinel

from store import redis_url
from store.durability import ReplicaWait
from store.errors import SLOT_MAP_STALE
from store.names import KeyNames

log = logging.getLogger(__name__)
LUA_DIR = Path(__file__).parent / "lua"


def connect(url: str, timeout: float, sentinel_password: str | None = None) -> redis.Redis:
    """Open a client with hard timeouts, so an outage answers fast instead of hanging.

    With a redis+sentinel:// URL the client always talks to the current primary (asked of
    the sentinels on every new connection), never to a replica: a replica may lag, and the
    gate must see every revocation.
    """
    target = redis_url.parse(url)
    if target.mode == "embedded":
        import fakeredis  # only the embedded fallback needs it

        log.warning(
            "Using the embedded in-process store: one worker only, nothing survives a restart. "
            "Set REDIS_URL for real use."
        )
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    options = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # One immediate retry on a dropped connection (say, Redis restarted, or a failover
        # moved the primary, and the pooled socket is stale); never on a timeout, which would
        # double the wait of an outage.
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    }
    if target.cluster is not None:
        nodes = target.cluster
        # The cluster client's own retry: a moved slot or a dead primary is tried again at
        # once, twice, each time after re-reading the slot map; then the answer is 503.
        options["retry"] = Retry(NoBackoff(), 2)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes.nodes],
            username=nodes.username,
            password=nodes.password,
            require_full_coverage=True,  # and no load_balancing_strategy: primaries only
            **options,
        )
    if target.sentinel is None:
        return redis.Redis.from_url(url, **options)
    where = target.sentinel
    sentinels = Sentinel(
        list(where.sentinels),
        sentinel_kwargs={
            "password": sentinel_password or None,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    )
    return sentinels.master_for(
        where.service_name,
        db=where.db,
        username=where.username,
        password=where.password,
        **options,
    )


OWNER_CACHE_SIZE = 10_000  # digests -> user ids remembered per process (about 2 MB)


class OwnerCache:
    """A bounded LRU of credential digest -> user id. Safe to cache: a digest never changes
    owner, and the credential's own record is still read on every request, so a revoked key
    or an ended session is refused however long its owner stays cached here."""

    def __init__(self, size: int = OWNER_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> str | None:
        """The cached owner, refreshed as most recently used; None when not cached."""
        with self._lock:
            owner = self._entries.get(digest)
            if owner is not None:
                self._entries.move_to_end(digest)
            return owner

    def put(self, digest: str, owner: str) -> None:
        """Remember an owner, evicting the least recently used beyond the size."""
        with self._lock:
            self._entries[digest] = owner
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def load_script(path: Path) -> str:
    """A script's source with the libraries it names on its first line ("-- uses: a b")
    prepended, so that shared Lua (store/lua/lib/) is written once."""
    source = path.read_text()
    first = source.split("\n", 1)[0]
    if not first.startswith("-- uses:"):
        return source
    libraries = [(LUA_DIR / "lib" / f"{name}.lua").read_text() for name in first[8:].split()]
    return "\n".join([*libraries, source])


class Lane:
    """One connection of the client's pool, set aside for Storage.run: each gate EVALSHA
    goes out without redis-py's per-call pool checkout (its lock and readiness poll), retry
    closure and metrics hooks: 39 µs of a gunicorn worker's CPU per request, measured
    (docs/performance.md, "The hot path").

    Failures behave as through the client: the connection's own Retry (one immediate retry
    on a dropped connection, none on a timeout, store/client.py:connect), a connection that
    failed is closed before it is used again (redis-py's read and send do that), and on
    Sentinel each reconnection asks the sentinels for the primary. One thread at a time:
    a caller that finds the lane busy goes through the client instead.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.busy = threading.Lock()
        self.pid = 0
        self.connection: Any = None

    def execute(self, *command: object) -> Any:
        """Send one command and return its reply (a ResponseError reply is raised)."""
        if not self.busy.acquire(blocking=False):
            return self.client.execute_command(*command)
        try:
            conn = self.connection
            if conn is None or self.pid != os.getpid():  # first use, or a forked child
                conn = self.connection = self.client.connection_pool.make_connection()
                self.pid = os.getpid()
            return conn.retry.call_with_retry(
                lambda: self._round_trip(conn, command), lambda error: conn.disconnect()
            )
        finally:
            self.busy.release()

    @staticmethod
    def _round_trip(conn: Any, command: tuple[object, ...]) -> Any:
        """Write the command, read the reply (connecting first when needed)."""
        # As the pool does on checkout: connect() is the one that asks Sentinel for the
        # primary (send_command alone would connect to the connection's default address).
        conn.connect()
        conn.send_command(*command)
        return conn.read_response()


@dataclass
class Storage:
    """A Redis client, the key names under one prefix, the Lua scripts and the replica wait."""

    redis: redis.Redis
    names: KeyNames
    wait: ReplicaWait = field(default_factory=ReplicaWait)  # for writes that must survive failover
    scripts: dict[str, redis.commands.core.Script] = field(default_factory=dict)
    owners: OwnerCache = field(default_factory=OwnerCache)

    def __post_init__(self) -> None:
        # The embedded store is one process's memory: no replicas, nothing to wait for.
        self.embedded = type(self.redis).__module__.startswith("fakeredis")
        # On Redis Cluster a script may only touch keys of one slot (names.py says which).
        self.cluster = isinstance(self.redis, RedisCluster)
        for path in sorted(LUA_DIR.glob("*.lua")):
            # register_script sends nothing now: EVALSHA first, SCRIPT LOAD only on NOSCRIPT.
            self.scripts[path.stem] = self.redis.register_script(load_script(path))
        # A real single Redis or Sentinel primary: scripts go through a Lane (the embedded
        # store and Cluster's routing client keep redis-py's own path).
        direct = isinstance(self.redis, redis.Redis) and not self.embedded
        self.lane = Lane(self.redis) if direct else None

    def run(self, script: str, keys: list[str], args: list[object]) -> Any:
        """Run one registered Lua script: one EVALSHA round trip (SCRIPT LOAD first only if
        the server does not know it: restarted, or a new primary)."""
        registered = self.scripts[script]
        if self.lane is None:
            return registered(keys=keys, args=args)
        command = ("EVALSHA", registered.sha, len(keys), *keys, *args)
        try:
            return self.lane.execute(*command)
        except NoScriptError:
            self.redis.script_load(registered.script)
            return self.lane.execute(*command)

    def scripts_loaded(self) -> bool:
        """Whether Redis (every primary, on Cluster) holds every script; missing ones are
        loaded first (a restarted Redis has none until a request needs one)."""
        scripts = list(self.scripts.values())
        present = self.redis.script_exists(*(script.sha for script in scripts))
        for script, loaded in zip(scripts, present, strict=True):
            if not loaded:
                self.redis.script_load(script.script)
        return all(self.redis.script_exists(*(script.sha for script in scripts)))

    def run_together(self, calls: list[tuple[str, list[str], list[object]]]) -> list[Any]:
        """Run several scripts in one pipeline (on Cluster: sent to their nodes together,
        then every reply read), loading them first if a node does not know one yet."""
        try:
            replies = self._pipeline(calls)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:  # a node without the script (restarted, or new after a failover)
                for i in missing:
                    self.redis.script_load(self.scripts[calls[i][0]].script)
                # Only those again: the others ran already, and must not count twice.
                again = self._pipeline([calls[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        except SLOT_MAP_STALE:
            if self.cluster:  # the next request goes by the new slot map
                self.refresh_slot_map()
            raise
        return replies

    def _pipeline(self, calls: list[tuple[str, list[str], list[object]]]) -> list[Any]:
        """Send every call's EVALSHA, then read every reply (errors as values)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                # execute_command: the cluster pipeline blocks its evalsha() method. The
                # node is named here from the slot map, or the pipeline would ask a server
                # for the keys of every EVALSHA (COMMAND GETKEYS).
                target = (
                    {"target_nodes": self.redis.get_node_from_key(keys[0])} if self.cluster else {}
                )
                pipe.execute_command(
                    "EVALSHA", self.scripts[script].sha, len(keys), *keys, *args, **target
                )
            return pipe.execute(raise_on_error=False)

    def refresh_slot_map(self) -> None:
        """Cluster: re-read the slot map now (after a failover), so the next command goes to
        the new primary; a failure is left to the next request to retry."""
        try:
            self.redis.nodes_manager.initialize()
        except Exception:  # noqa: BLE001 - still failing over
            log.warning("could not re-read the cluster's slot map yet")

    def owner_of(self, kind: str, digest: str) -> str | None:
        """The user id a key or session digest belongs to: from the process's cache, else one
        GET of its owner index (cached when found; an unknown digest is never cached)."""
        cached = self.owners.get(digest)
        if cached is not None:
            return cached
        owner = self.redis.get(self.names.credential_owner(kind, digest))
        if owner is not None:
            self.owners.put(digest, owner)
        return owner
