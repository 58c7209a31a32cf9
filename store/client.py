"""The one Redis client per process, its Lua scripts and the key names, bundled as Storage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from store.names import KeyNames

log = logging.getLogger(__name__)
LUA_DIR = Path(__file__).parent / "lua"
EMBEDDED_URL = "memory://"


def connect(url: str, timeout: float) -> redis.Redis:
    """Open a client with hard timeouts, so an outage answers fast instead of hanging."""
    if url.startswith(EMBEDDED_URL):
        import fakeredis  # only the embedded fallback needs it

        log.warning(
            "Using the embedded in-process store: one worker only, nothing survives a restart. "
            "Set REDIS_URL for real use."
        )
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One immediate retry on a dropped connection (say, Redis restarted and the pooled
        # socket is stale); never on a timeout, which would double the wait of an outage.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )


@dataclass
class Storage:
    """A Redis client, the key names under one prefix and the registered Lua scripts."""

    redis: redis.Redis
    names: KeyNames
    scripts: dict[str, redis.commands.core.Script] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in sorted(LUA_DIR.glob("*.lua")):
            # register_script sends nothing now: EVALSHA first, SCRIPT LOAD only on NOSCRIPT.
            self.scripts[path.stem] = self.redis.register_script(path.read_text())

    def run(self, script: str, keys: list[str], args: list[object]) -> object:
        """Run one registered Lua script: one EVALSHA round trip."""
        return self.scripts[script](keys=keys, args=args)
