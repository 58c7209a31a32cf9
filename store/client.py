"""The one Redis client per process, its Lua scripts and the key names, bundled as Storage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from store import redis_url
from store.durability import ReplicaWait
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
    if target.sentinel is None:
        return redis.Redis.from_url(url, **options)
    where = target.sentinel
    sentinels = Sentinel(
        list(where.sentinels),
        sentinel_kwargs={"password": sentinel_password or None, "socket_timeout": timeout,
                         "socket_connect_timeout": timeout},
    )
    return sentinels.master_for(
        where.service_name, db=where.db, username=where.username, password=where.password,
        **options,
    )


@dataclass
class Storage:
    """A Redis client, the key names under one prefix, the Lua scripts and the replica wait."""

    redis: redis.Redis
    names: KeyNames
    wait: ReplicaWait = field(default_factory=ReplicaWait)  # for writes that must survive failover
    scripts: dict[str, redis.commands.core.Script] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The embedded store is one process's memory: no replicas, nothing to wait for.
        self.embedded = type(self.redis).__module__.startswith("fakeredis")
        for path in sorted(LUA_DIR.glob("*.lua")):
            # register_script sends nothing now: EVALSHA first, SCRIPT LOAD only on NOSCRIPT.
            self.scripts[path.stem] = self.redis.register_script(path.read_text())

    def run(self, script: str, keys: list[str], args: list[object]) -> object:
        """Run one registered Lua script: one EVALSHA round trip."""
        return self.scripts[script](keys=keys, args=args)
