"""REDIS_URL, understood once: one server, a Sentinel-managed primary, a Redis Cluster, or the
embedded store.

redis-py parses redis://, rediss:// and unix:// itself, but has no URL form for Sentinel or
Cluster; these are parsed here (the notation the `limits` library and most clients use):
redis+sentinel://[[user]:password@]host1:port1[,host2:port2...]/<service_name>[/db]
redis+cluster://[[user]:password@]host1:port1[,host2:port2...]
The password is the data nodes'; sentinels with a password of their own get it from
REDIS_SENTINEL_PASSWORD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

EMBEDDED_URL = "memory://"
SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_REDIS_PORT = 6379

_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::(?P<port>\d+))?$"
)
_SERVICE = re.compile(r"^[A-Za-z0-9._-]+$")


class RedisUrlError(ValueError):
    """REDIS_URL cannot be used; the message names the problem in one line."""


@dataclass(frozen=True)
class SentinelTarget:
    """A primary found through Sentinel: where the sentinels are and what they call it."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    username: str | None
    password: str | None


@dataclass(frozen=True)
class ClusterTarget:
    """A Redis Cluster: the startup nodes (any of its primaries or replicas) and the login."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None


@dataclass(frozen=True)
class RedisTarget:
    """What REDIS_URL points at: mode is "single", "sentinel", "cluster" or "embedded"."""

    mode: str
    url: str
    sentinel: SentinelTarget | None = None
    cluster: ClusterTarget | None = None


def parse(url: str) -> RedisTarget:
    """Classify and check a REDIS_URL; raises RedisUrlError naming what is wrong."""
    if url.startswith(EMBEDDED_URL):
        return RedisTarget("embedded", url)
    if url.startswith(SINGLE_SCHEMES):
        return RedisTarget("single", url)
    if url.startswith(SENTINEL_SCHEME):
        return RedisTarget("sentinel", url, sentinel=_parse_sentinel(url[len(SENTINEL_SCHEME) :]))
    if url.startswith(CLUSTER_SCHEME):
        return RedisTarget("cluster", url, cluster=_parse_cluster(url[len(CLUSTER_SCHEME) :]))
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise RedisUrlError(
        f"REDIS_URL has an unsupported scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+sentinel://, redis+cluster:// or memory://"
    )


def _split(rest: str, mode: str, default_port: int):
    """(username, password, hosts, path) of what follows the scheme; errors never echo the
    password."""
    if "?" in rest or "#" in rest:
        raise RedisUrlError(f"REDIS_URL ({mode}): query strings and fragments are not supported")
    userinfo, _, hostpart = rest.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
        if not has_password:  # "secret@host": the usual shorthand for a password alone
            username, password = None, unquote(user)
    hosts, _, path = hostpart.partition("/")
    if not hosts:
        raise RedisUrlError(f"REDIS_URL ({mode}) names no host")
    nodes = tuple(_host_port(item, mode, default_port) for item in hosts.split(","))
    return username, password, nodes, path


def _parse_cluster(rest: str) -> ClusterTarget:
    """Parse what follows redis+cluster:// (a cluster has database 0 only: no path)."""
    username, password, nodes, path = _split(rest, "cluster", DEFAULT_REDIS_PORT)
    if path:
        raise RedisUrlError("REDIS_URL (cluster) takes no path: a cluster has database 0 only")
    return ClusterTarget(nodes, username, password)


def _parse_sentinel(rest: str) -> SentinelTarget:
    """Parse what follows redis+sentinel://."""
    username, password, sentinels, path = _split(rest, "sentinel", DEFAULT_SENTINEL_PORT)
    segments = path.split("/") if path else []
    if not segments or not segments[0]:
        raise RedisUrlError(
            "REDIS_URL (sentinel) names no service: redis+sentinel://host:port/<service_name>"
        )
    if len(segments) > 2 or not _SERVICE.fullmatch(segments[0]):
        raise RedisUrlError(
            "REDIS_URL (sentinel) path must be /<service_name>[/<db>] "
            "(letters, digits, '.', '_' and '-')"
        )
    db = 0
    if len(segments) == 2 and segments[1]:
        if not segments[1].isdigit():
            raise RedisUrlError(
                f"REDIS_URL (sentinel) database must be a number, got {segments[1]!r}"
            )
        db = int(segments[1])
    return SentinelTarget(sentinels, segments[0], db, username, password)


def _host_port(item: str, mode: str, default_port: int) -> tuple[str, int]:
    """One "host[:port]" of the host list."""
    match = _HOST_PORT.fullmatch(item.strip())
    if not match:
        raise RedisUrlError(f"REDIS_URL ({mode}) has a malformed host {item.strip()!r}")
    port = int(match["port"]) if match["port"] else default_port
    if not 0 < port < 65536:
        raise RedisUrlError(f"REDIS_URL ({mode}) port out of range: {port}")
    return match["v6"] or match["name"], port


def host_list(nodes: tuple[tuple[str, int], ...]) -> str:
    """ "host:port,host:port" (IPv6 hosts in brackets), as URLs write them."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in nodes)
