"""The production topology, defined once: its services, Redis's settings, what every app
instance is told, and the nginx template in front.

Two things are built on it: `make stack` (deploy/stack.py, for machines without Docker) and
docker-compose.yml (hand-written, so it can carry comments; tests/stack/test_compose.py checks that
it names the same services and settings as this module).

Redis comes in three topologies (REDIS_TOPOLOGIES): one server ("single", the default); a
primary, two replicas and three sentinels ("sentinel": `make stack STACK_REDIS=sentinel`, and
docker-compose.sentinel.yml on top of docker-compose.yml); or a Redis Cluster of three
primaries and three replicas ("cluster": `make stack STACK_REDIS=cluster`; no compose file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
NGINX_TEMPLATE = DEPLOY_DIR / "nginx" / "genmb.conf.template"

REDIS_SERVICE = "redis"
APP_INSTANCES = ("app1", "app2")
PROXY_SERVICE = "nginx"
SERVICES = (REDIS_SERVICE, *APP_INSTANCES, PROXY_SERVICE)

# redis-server directives. The append-only file is the persistence (fsync once a second: a
# crash of the machine loses at most about the last second of writes; a crash of the process
# loses nothing already acknowledged); no RDB snapshots on top of it (backups stream one on
# demand, see docs/deploy.md). noeviction: with a maxmemory set, Redis refuses writes rather
# than silently drop a key record, a session or a rate-limit window.
REDIS_SETTINGS: dict[str, str] = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
    "save": "",
}
REDIS_PORT = 6379  # inside the compose network; make stack picks a free loopback port

# ---- High availability: Redis Sentinel (docs/deploy.md, "High availability") ----------------
REDIS_TOPOLOGIES = ("single", "sentinel", "cluster")
# The data nodes, each with REDIS_SETTINGS and the password (requirepass, and masterauth: any
# of them may become a replica of another). The first starts as the primary; it is the single
# topology's server (same data directory under make stack, same service and volume in
# compose), so switching topologies keeps the data. docker-compose.sentinel.yml adds the
# others to docker-compose.yml (tests/stack/test_compose.py checks it against this module).
REDIS_NODES = (REDIS_SERVICE, "redis2", "redis3")
SENTINELS = ("sentinel1", "sentinel2", "sentinel3")
SENTINEL_PORT = 26379  # inside the compose network; make stack picks free loopback ports
SENTINEL_SERVICE_NAME = "genmb"  # what the sentinels call the primary: REDIS_URL's /<service>
SENTINEL_QUORUM = 2  # sentinels that must find the primary down before a failover starts
# `sentinel <name> <service> <value>` lines. down-after: a primary silent this long is down
# (failover then takes about another second); failover-timeout also spaces out retries of a
# failed failover (twice this); parallel-syncs: replicas resyncing with a new primary at once.
SENTINEL_SETTINGS: dict[str, str] = {
    "down-after-milliseconds": "1000",
    "failover-timeout": "10000",
    "parallel-syncs": "1",
}

# ---- Redis Cluster (docs/deploy.md, "Redis Cluster") ----------------------------------------
# Six data nodes, each with REDIS_SETTINGS, CLUSTER_SETTINGS and the password (requirepass and
# masterauth: a replica is promoted when its primary dies). Their own names and data
# directories: a cluster node refuses to join a cluster while it holds keys, so the single
# topology's data cannot carry over (copy it: docs/storage.md).
CLUSTER_NODES = tuple(f"cluster{i}" for i in range(1, 7))
CLUSTER_REPLICAS = 1  # per primary: three primaries, three replicas
# cluster-node-timeout: a primary silent this long is failing; its replica is promoted about
# a second later (the same pace as SENTINEL_SETTINGS' down-after-milliseconds). The bus port
# (cluster-port) is set per node: port + 10000, the default, overflows for a high port.
CLUSTER_SETTINGS: dict[str, str] = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": "1000",
}

# What every app instance is told, on top of REDIS_URL and the secrets. Exactly one proxy
# (nginx) appends to X-Forwarded-For, so the app takes the last hop: the address nginx saw.
APP_SETTINGS: dict[str, str] = {
    "TRUSTED_PROXY_COUNT": "1",
    "ACCESS_LOG": "-",  # gunicorn's access log to stdout, through the key-redacting logger
}
APP_PORT = 8000  # inside the compose network; make stack picks free loopback ports
GUNICORN_CONF = "deploy/gunicorn.conf.py"
WSGI_APP = "app:create_app()"

# Settings that are secrets: never in the repository; .env (compose) or var/ files (make stack).
SECRETS = ("SECRET_KEY", "REDIS_PASSWORD")

# nginx marks an instance down after one failed attempt, for this long, then tries it again.
UPSTREAM_PARAMETERS = "max_fails=1 fail_timeout=5s"
# The template's variables (the official nginx image substitutes only these: the filter).
TEMPLATE_VARIABLES = ("GENMB_LISTEN", "GENMB_UPSTREAM_SERVERS", "GENMB_ACCESS_LOG")
TEMPLATE_FILTER = "^GENMB_"


def upstream_servers(addresses: Iterable[str]) -> str:
    """The upstream block's `server` lines (one line, as an environment variable can carry)."""
    return " ".join(f"server {address} {UPSTREAM_PARAMETERS};" for address in addresses)


def redis_url(password: str, host: str, port: int) -> str:
    """The REDIS_URL an app instance gets (the password must be URL-safe: see .env.example).
    The user name is spelled out: redis-cli -u sends an empty one as is (WRONGPASS)."""
    return f"redis://default:{password}@{host}:{port}/0"


def redis_nodes(redis_topology: str = "single") -> tuple[str, ...]:
    """The Redis data nodes of a topology: ("redis",), REDIS_NODES for "sentinel",
    CLUSTER_NODES for "cluster"."""
    nodes = {"single": (REDIS_SERVICE,), "sentinel": REDIS_NODES, "cluster": CLUSTER_NODES}
    if redis_topology not in nodes:
        raise ValueError(
            f"unknown Redis topology {redis_topology!r}: use "
            f"{', '.join(REDIS_TOPOLOGIES[:-1])} or {REDIS_TOPOLOGIES[-1]}"
        )
    return nodes[redis_topology]


def services(redis_topology: str = "single") -> tuple[str, ...]:
    """Every service of a topology, in start order (SERVICES for "single")."""
    sentinels = SENTINELS if redis_topology == "sentinel" else ()
    return (*redis_nodes(redis_topology), *sentinels, *APP_INSTANCES, PROXY_SERVICE)


def sentinel_url(password: str, sentinels: Iterable[tuple[str, int]]) -> str:
    """The REDIS_URL for the Sentinel topology (the data nodes' password; the sentinels' own
    goes in REDIS_SENTINEL_PASSWORD)."""
    hosts = ",".join(f"{host}:{port}" for host, port in sentinels)
    return f"redis+sentinel://:{password}@{hosts}/{SENTINEL_SERVICE_NAME}/0"


def cluster_url(password: str, nodes: Iterable[tuple[str, int]]) -> str:
    """The REDIS_URL for the Cluster topology: every node as a startup node."""
    return f"redis+cluster://:{password}@{','.join(f'{h}:{p}' for h, p in nodes)}"


def sentinel_config_lines(primary: tuple[str, int], password: str) -> list[str]:
    """A sentinel's sentinel.conf lines: what to monitor, SENTINEL_SETTINGS, the passwords.

    The sentinels require the same password as the data nodes (requirepass; Sentinel also
    uses it to authenticate to the other sentinels): an open sentinel would let anyone who
    reaches it trigger failovers or point the service at a Redis of their choosing.
    """
    service = SENTINEL_SERVICE_NAME
    host, port = primary
    return [
        f"sentinel monitor {service} {host} {port} {SENTINEL_QUORUM}",
        *(f"sentinel {name} {service} {value}" for name, value in SENTINEL_SETTINGS.items()),
        f"sentinel auth-pass {service} {password}",
        f"requirepass {password}",
    ]


def redis_config_lines(settings: Mapping[str, str] | None = None) -> list[str]:
    """REDIS_SETTINGS as redis.conf lines."""
    return [
        f'{name} "{value}"' if value == "" else f"{name} {value}"
        for name, value in (settings or REDIS_SETTINGS).items()
    ]


def redis_command_flags(settings: Mapping[str, str] | None = None) -> list[str]:
    """REDIS_SETTINGS as redis-server command-line flags."""
    flags: list[str] = []
    for name, value in (settings or REDIS_SETTINGS).items():
        flags += [f"--{name}", value]
    return flags


_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Substitute ${NAME} as the nginx image's envsubst does; every template variable is required.

    nginx's own variables ($host, $proxy_add_x_forwarded_for) have no braces and stay as
    they are.
    """
    missing = sorted(set(TEMPLATE_VARIABLES) - set(values))
    if missing:
        raise ValueError(f"template values missing: {', '.join(missing)}")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TEMPLATE_VARIABLES:
            raise ValueError(f"unknown template variable ${{{name}}}")
        return values[name]

    return _VARIABLE.sub(substitute, text)


def render_nginx(values: Mapping[str, str]) -> str:
    """deploy/nginx/genmb.conf.template with the given values."""
    return render_template(NGINX_TEMPLATE.read_text(), values)
