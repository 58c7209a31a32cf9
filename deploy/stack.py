"""`make stack`: docker-compose.yml's topology without Docker, on this machine's loopback.

A redis-server with the compose file's settings and a password, two gunicorn instances of the
app on their own ports, and the system's nginx on one port in front, load-balancing across
them: each part started, health-checked, and stopped cleanly (Ctrl-C or TERM) by the one
command. Everything it writes is under var/stack/: the Redis data, nginx's rendered
configuration and temporary files, and one log per process.

With STACK_REDIS=sentinel, Redis is a primary, two replicas and three sentinels instead
(deploy/topology.py), and the app instances get a redis+sentinel:// URL; with
STACK_REDIS=cluster, a Redis Cluster of three primaries and three replicas behind a
redis+cluster:// URL. With STACK_PROMETHEUS=1, each app instance also serves its metrics on a
METRICS_BIND port of its own, and the system's Prometheus scrapes both (deploy/prometheus.py).

    python -m deploy.stack     # PORT (default 8000) for nginx, WORKERS per instance (2),
                               # STACK_REDIS: single (default), sentinel or cluster,
                               # STACK_PROMETHEUS: 1 to run Prometheus too

The tests import `Stack` and start the same topology on free ports in a temporary directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import SettingError, load_settings, read_setting
from deploy import prometheus, topology
from deploy.listen import port_free
from deploy.processes import (
    LOOPBACK,
    ROOT,
    START_TIMEOUT,
    Gunicorn,
    Process,
    ProcessError,
    free_port,
    http_ok,
    program,
    wait_until,
)

__all__ = ["Stack", "StackError"]


class StackError(ProcessError):
    """The stack as a whole could not be started or asked (its parts raise ProcessError)."""


def _secret(env: Mapping[str, str], name: str, path: Path) -> str:
    """A secret from the environment, else from var/ (made once, owner-only, URL-safe)."""
    value = env.get(name, "")
    if value:
        return value
    if not path.exists() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class Stack:
    """Redis, the app instances and nginx in front, all on the loopback, data under `var`.

    redis_topology "single": one redis-server; "sentinel": a primary, two replicas and three
    sentinels; "cluster": six cluster nodes, three primaries with a replica each
    (deploy/topology.py).
    """

    def __init__(
        self,
        var: Path,
        port: int | None = None,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        instances: tuple[str, ...] = topology.APP_INSTANCES,
        redis_topology: str = "single",
        with_prometheus: bool = False,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.var = var.resolve()
        self.dir = self.var / "stack"
        self.port = port or free_port()
        self.workers = workers
        self.redis_topology = redis_topology
        self.node_ports = {name: free_port() for name in topology.redis_nodes(redis_topology)}
        self.cluster = redis_topology == "cluster"
        # Each cluster node's bus port (cluster-port), picked like the others.
        self.bus_ports = {name: free_port() for name in self.node_ports} if self.cluster else {}
        sentinels = topology.SENTINELS if redis_topology == "sentinel" else ()
        self.sentinel_ports = {name: free_port() for name in sentinels}
        self.app_ports = {name: free_port() for name in instances}
        # Each instance's METRICS_BIND, and Prometheus's own port, when it runs.
        self.metrics_ports = {name: free_port() for name in instances} if with_prometheus else {}
        self.prometheus_port = free_port() if with_prometheus else None
        self.secret_key = _secret(self.env, "SECRET_KEY", self.var / "secret_key")
        self.redis_password = _secret(self.env, "REDIS_PASSWORD", self.var / "redis_password")
        self.first_primary = self._recorded_primary()
        self.redis_parts = {name: self._redis_part(name, p) for name, p in self.node_ports.items()}
        self.sentinels = {
            name: self._sentinel_part(name, p) for name, p in self.sentinel_ports.items()
        }
        self.apps = {name: self._app_part(name, p) for name, p in self.app_ports.items()}
        self.nginx = self._nginx_part()
        self.prometheus = (
            prometheus.part(self.dir, self.prometheus_port, self.metrics_ports, self.env)
            if self.prometheus_port
            else None
        )

    # ---- addresses ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """nginx, the one front door: http://127.0.0.1:<port>."""
        return f"http://{LOOPBACK}:{self.port}"

    def app_url(self, name: str) -> str:
        """One app instance directly, behind nginx's back (for tests and diagnosis)."""
        return f"http://{LOOPBACK}:{self.app_ports[name]}"

    @property
    def redis_url(self) -> str:
        """The REDIS_URL every app instance gets (with the password)."""
        if self.sentinel_ports:
            return topology.sentinel_url(
                self.redis_password, ((LOOPBACK, p) for p in self.sentinel_ports.values())
            )
        if self.cluster:
            return topology.cluster_url(
                self.redis_password, ((LOOPBACK, p) for p in self.node_ports.values())
            )
        return topology.redis_url(self.redis_password, LOOPBACK, self.redis_port)

    @property
    def sentinel_password(self) -> str | None:
        """REDIS_SENTINEL_PASSWORD: the sentinels require the data nodes' password too."""
        return self.redis_password if self.sentinel_ports else None

    @property
    def redis_port(self) -> int:
        """The port of the Redis primary (now: the sentinels may have moved it)."""
        return self.node_ports[self.primary_name()]

    @property
    def redis_part(self) -> Process:
        """The Redis primary's part (now)."""
        return self.redis_parts[self.primary_name()]

    def redis_client(self, timeout: float = 2.0, port: int | None = None) -> redis.Redis:
        """A fresh client on the stack's Redis primary, or on the Redis process at `port`
        (no retries: its callers poll, and a refused connection must fail at once)."""
        return redis.Redis(
            host=LOOPBACK,
            port=port or self.redis_port,
            password=self.redis_password,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def primary_name(self) -> str:
        """The data node that is the primary, as the first sentinel that answers and finds it
        up says: the rule a redis-py Sentinel client applies (a cluster has one per slot: see
        primary_names)."""
        if self.cluster:
            raise StackError("a cluster has three primaries: use primary_names()")
        if not self.sentinel_ports:
            return next(iter(self.node_ports))
        by_port = {port: name for name, port in self.node_ports.items()}
        last: object = None
        for port in self.sentinel_ports.values():
            try:
                with self.redis_client(1.0, port) as sentinel:
                    state = sentinel.sentinel_master(topology.SENTINEL_SERVICE_NAME)
            except redis.RedisError as exc:
                last = exc
                continue
            # Just after a failover a sentinel that did not lead it still names the old,
            # dead primary (flagged down) until the new primary's hello messages reach it.
            if not _found_up(state):
                last = f"sentinel on {port} finds {state['port']} down"
                continue
            return by_port[int(state["port"])]
        raise StackError(f"no sentinel names a primary that is up ({last!r})")

    def primary_names(self) -> list[str]:
        """The data nodes that are primaries now: the one primary, or a cluster's running
        nodes that say they are."""
        if not self.cluster:
            return [self.primary_name()]
        return [
            name
            for name, port in self.node_ports.items()
            if self.redis_parts[name].running and self._role(port) == "master"
        ]

    def _role(self, port: int) -> str:
        """A data node's role: master, slave, or syncing (a replica not linked yet)."""
        with self.redis_client(1.0, port) as node:
            info = node.info("replication")
        linked = info["role"] != "slave" or info.get("master_link_status") == "up"
        return info["role"] if linked else "syncing"

    def cluster_ok(self) -> bool:
        """Every running cluster node reports cluster_state ok and all 16384 slots served,
        with three primaries and every other node a linked replica."""
        running = [port for name, port in self.node_ports.items() if self.redis_parts[name].running]
        for port in running:
            with self.redis_client(1.0, port) as node:
                info = node.cluster("info")
            if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                return False
        roles = [self._role(port) for port in running]
        primaries = len(self.node_ports) // (1 + topology.CLUSTER_REPLICAS)
        return (
            roles.count("master") == primaries and roles.count("slave") == len(running) - primaries
        )

    def _join_cluster(self) -> None:
        """Fresh nodes: redis-cli --cluster create (the slots over three primaries, a replica
        each). Nodes that formed the cluster before (a restart: their nodes.conf holds the
        old ports): CLUSTER MEET from the first tells each node the others' new addresses."""
        ports = list(self.node_ports.values())
        with self.redis_client(2.0, ports[0]) as first:
            if int(first.cluster("info")["cluster_known_nodes"]) > 1:
                for name, port in list(self.node_ports.items())[1:]:
                    first.execute_command("CLUSTER", "MEET", LOOPBACK, port, self.bus_ports[name])
                return
        create = subprocess.run(
            [
                program("redis-cli"),
                "--cluster",
                "create",
                *(f"{LOOPBACK}:{p}" for p in ports),
                "--cluster-replicas",
                str(topology.CLUSTER_REPLICAS),
                "--cluster-yes",
            ],
            env={**self.env, "REDISCLI_AUTH": self.redis_password},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise StackError(
                f"redis-cli --cluster create failed (a half-made cluster: remove "
                f"{self.dir}/cluster*):\n{create.stdout[-2000:]}{create.stderr}"
            )

    def sentinel_view(self, port: int) -> str | None:
        """The primary the sentinel at `port` names, if it finds it up and sees every replica
        (linked to it) and every other sentinel; else None."""
        service = topology.SENTINEL_SERVICE_NAME
        with self.redis_client(1.0, port) as sentinel:
            state = sentinel.sentinel_master(service)
            replicas = [
                r
                for r in sentinel.sentinel_slaves(service)
                if _found_up(r) and r["master-link-status"] == "ok"
            ]
        complete = (
            _found_up(state)
            and len(replicas) >= len(self.node_ports) - 1
            and state["num-other-sentinels"] >= len(self.sentinel_ports) - 1
        )
        by_port = {port: name for name, port in self.node_ports.items()}
        return by_port.get(int(state["port"])) if complete else None

    def settled_primary(self) -> str | None:
        """The primary, once every sentinel names the same one with a complete view."""
        views = {self.sentinel_view(port) for port in self.sentinel_ports.values()}
        return views.pop() if len(views) == 1 else None

    @property
    def parts(self) -> list[Process]:
        """Every part, in start order."""
        return [
            *self.redis_parts.values(),
            *self.sentinels.values(),
            *self.apps.values(),
            self.nginx,
            *([self.prometheus] if self.prometheus else []),
        ]

    # ---- the parts ------------------------------------------------------------------

    def _ping(self, port: int) -> bool:
        with self.redis_client(1.0, port) as client:
            return bool(client.ping())

    def _redis_part(self, name: str, port: int) -> Process:
        return Process(
            name,
            [program("redis-server"), str(self.dir / f"{name}.conf")],
            dict(self.env),
            self.dir / f"{name}.log",
            lambda: self._ping(port),
        )

    def _sentinel_part(self, name: str, port: int) -> Process:
        # Healthy once it sees the primary, both replicas and the other sentinels.
        return Process(
            name,
            [program("redis-server"), str(self.dir / f"{name}.conf"), "--sentinel"],
            dict(self.env),
            self.dir / f"{name}.log",
            lambda: self.sentinel_view(port),
        )

    def _write_redis_confs(self) -> None:
        """Each data node's and sentinel's configuration, rewritten at every start."""
        primary = self.node_ports[self.first_primary]
        for name, port in {**self.node_ports, **self.sentinel_ports}.items():
            (self.dir / name).mkdir(exist_ok=True)
            lines = [
                "# Written by deploy/stack.py from deploy/topology.py; holds the password.",
                f"bind {LOOPBACK}",
                f"port {port}",
                f"dir {self.dir / name}",
                "daemonize no",
            ]
            if name in self.sentinel_ports:
                # Sentinel rewrites this file as it learns; var/ is the owner's only (0700).
                lines += topology.sentinel_config_lines((LOOPBACK, primary), self.redis_password)
            else:
                lines += [*topology.redis_config_lines(), f"requirepass {self.redis_password}"]
            if name in self.bus_ports:
                lines += [
                    *topology.redis_config_lines(topology.CLUSTER_SETTINGS),
                    f"cluster-port {self.bus_ports[name]}",
                ]
            if name in self.node_ports and len(self.node_ports) > 1:
                # Any node may have to follow another after a failover.
                lines.append(f"masterauth {self.redis_password}")
            if name in self.node_ports and self.sentinel_ports and port != primary:
                lines.append(f"replicaof {LOOPBACK} {primary}")
            _write_private(self.dir / f"{name}.conf", "\n".join(lines) + "\n")

    # Which node was the primary when the stack last looked: the next start makes it the
    # primary again, so a node left behind by a failover never overwrites the newer data.
    def _recorded_primary(self) -> str:
        nodes = list(self.node_ports)
        path = self.dir / "primary"
        recorded = path.read_text().strip() if path.exists() else ""
        return recorded if recorded in nodes else nodes[0]

    def record_primary(self) -> str | None:
        """Note the current primary in var/stack/primary; returns its name if it changed."""
        if not self.sentinel_ports:
            return None
        path = self.dir / "primary"
        try:
            name = self.primary_name()
        except StackError:
            return None
        if path.exists() and path.read_text().strip() == name:
            return None
        path.write_text(name + "\n")
        return name

    def _app_part(self, name: str, port: int) -> Gunicorn:
        env = {
            **self.env,
            # make stack serves plain HTTP on the loopback: no Secure cookie flag by default.
            "GENMB_ENV": self.env.get("GENMB_ENV", "development"),
            **topology.APP_SETTINGS,
            "REDIS_URL": self.redis_url,
            **self._sentinel_setting(),
            "SECRET_KEY": self.secret_key,
            "WORKERS": str(self.workers),
            "BIND": f"{LOOPBACK}:{port}",
        }
        if name in self.metrics_ports:
            env["METRICS_BIND"] = f"{LOOPBACK}:{self.metrics_ports[name]}"
        env.pop("REDIS_PASSWORD", None)  # the app only needs its REDIS_URL
        # Each instance its own metrics directory (gunicorn.conf.py makes one): a shared one
        # would sum both instances in each one's /metrics.
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # Ready (Redis takes writes, the scripts are loaded), not merely alive: nginx comes next.
        return Gunicorn(
            name, env, self.dir / f"{name}.log", self.workers, port, ready_path="/readyz"
        )

    def _sentinel_setting(self) -> dict[str, str]:
        """REDIS_SENTINEL_PASSWORD, for the Sentinel topology only."""
        password = self.sentinel_password
        return {"REDIS_SENTINEL_PASSWORD": password} if password else {}

    def _nginx_part(self) -> Process:
        prefix = self.dir / "nginx"
        argv = [
            program("nginx"),
            "-p",
            f"{prefix}/",
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(self.dir / "nginx-error.log"),
        ]
        url = f"{self.url}/healthz"
        # QUIT: finish the requests in flight, then exit.
        return Process(
            "nginx",
            argv,
            dict(self.env),
            self.dir / "nginx.log",
            lambda: self.nginx_holds_port() and http_ok(url),
            signal.SIGQUIT,
        )

    def nginx_holds_port(self) -> bool:
        """Our nginx has bound PORT: it writes its pid file only after opening its listening
        socket. Until then a 200 on PORT may be another server's, one that took the port
        after start() found it free (nginx retries a busy port for seconds, then exits)."""
        process = self.nginx.process
        try:
            pid = (self.dir / "nginx" / "nginx.pid").read_text().strip()
        except OSError:
            return False
        return process is not None and pid == str(process.pid)

    def nginx_conf(self) -> str:
        """The genmb server (the shared template) inside a main config that keeps all under var/."""
        prefix = self.dir / "nginx"
        user = ""
        if os.geteuid() == 0:  # workers run as the user who started the stack, not nobody
            user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"
        temp = "\n".join(
            f"    {kind}_temp_path {prefix / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            "# Written by deploy/stack.py; the server block is deploy/nginx/genmb.conf.template.\n"
            f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {self.dir / 'nginx-error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    default_type application/octet-stream;\n"
            f"{temp}\n"
            f"    include {prefix / 'genmb.conf'};\n"
            "}\n"
        )

    def template_values(self) -> dict[str, str]:
        """The template's values for this stack."""
        addresses = [f"{LOOPBACK}:{port}" for port in self.app_ports.values()]
        return {
            "GENMB_LISTEN": f"{LOOPBACK}:{self.port}",
            "GENMB_UPSTREAM_SERVERS": topology.upstream_servers(addresses),
            "GENMB_ACCESS_LOG": str(self.dir / "nginx-access.log"),
        }

    def _write_nginx_conf(self) -> None:
        prefix = self.dir / "nginx"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
        (prefix / "genmb.conf").write_text(topology.render_nginx(self.template_values()))
        (prefix / "nginx.conf").write_text(self.nginx_conf())
        check = subprocess.run(
            [*self.nginx.argv, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0:
            raise StackError(f"nginx rejected its configuration:\n{check.stderr}")

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> Stack:
        """Start Redis (data nodes, then sentinels), then the app instances, then nginx: each
        stage checked healthy before the next."""
        # nginx retries a busy port for seconds while someone else's server answers its
        # health check: refuse at once instead of reporting that server as ours.
        if not port_free(LOOPBACK, self.port):
            raise StackError(
                f"{LOOPBACK}:{self.port} is already in use by another server (set PORT)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.var, 0o700)
        self._write_redis_confs()
        self._write_nginx_conf()
        settings = {
            "REDIS_URL": self.redis_url,
            **self._sentinel_setting(),
            "SECRET_KEY": self.secret_key,
            "GENMB_ENV": self.apps[next(iter(self.apps))].env["GENMB_ENV"],
        }
        _write_private(
            self.dir / "stack.env", "".join(f"{name}={value}\n" for name, value in settings.items())
        )
        if self.prometheus:
            prometheus.write_config(self.dir, self.metrics_ports)
        stages = [self.redis_parts, self.sentinels, self.apps, {"nginx": self.nginx}]
        if self.prometheus:
            stages.append({"prometheus": self.prometheus})
        try:
            for stage in filter(None, stages):
                for part in stage.values():
                    part.launch()
                for part in stage.values():
                    part.wait_healthy()
                if stage is self.redis_parts and self.cluster:
                    self._join_cluster()
                    wait_until(self.cluster_ok, START_TIMEOUT, "the cluster (16384 slots)")
                if stage is self.sentinels:
                    wait_until(self.settled_primary, START_TIMEOUT, "the sentinels' agreement")
                    self.record_primary()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop nginx, then the app instances, then the sentinels (no failover while Redis
        stops), then Redis (which syncs its append-only file)."""
        if any(part.running for part in self.sentinels.values()):
            self.record_primary()
        for part in reversed(self.parts):
            part.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults, for the tests ------------------------------------------------------

    def kill_app(self, name: str) -> None:
        """SIGKILL an app instance: its master and every worker, nothing finishes."""
        self.apps[name].kill()

    def restart_app(self, name: str) -> None:
        """Start a stopped app instance again on its port."""
        part = self.apps[name]
        part.stop()
        part.start()

    def kill_redis(self, name: str | None = None) -> str:
        """SIGKILL a data node (by default the primary): no shutdown, no final fsync.
        Returns its name."""
        name = name or self.primary_name()
        self.redis_parts[name].kill()
        return name

    def restart_redis(self) -> None:
        """Start Redis again on the same port and data directory (it loads the AOF)."""
        self.redis_part.stop()
        self.redis_part.start()

    def pause_redis(self) -> None:
        """SIGSTOP Redis: connections stay open, nothing answers."""
        self.redis_part.signal_group(signal.SIGSTOP)

    def resume_redis(self) -> None:
        """SIGCONT Redis."""
        self.redis_part.signal_group(signal.SIGCONT)


def _found_up(state: dict[str, Any]) -> bool:
    """A sentinel's view of a node (SENTINEL MASTER or REPLICAS, parsed by redis-py): not
    flagged down, subjectively or objectively."""
    return not (state["is_sdown"] or state["is_odown"])


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main() -> int:
    """Start the stack, print where it is, supervise until Ctrl-C or TERM, stop it all."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        # The app's settings as the instances will get them, checked before anything starts:
        # a bad one is one line here, not an instance's log tail (the URL and secret are the
        # stack's own, filled in by Stack).
        load_settings(
            env={
                **os.environ,
                "GENMB_ENV": os.environ.get("GENMB_ENV") or "development",
                **topology.APP_SETTINGS,
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "SECRET_KEY": "checked",
            }
        )
        stack = Stack(
            ROOT / "var",
            port=read_setting("PORT") or 8000,
            workers=read_setting("WORKERS") or 2,
            redis_topology=os.environ.get("STACK_REDIS") or "single",
            with_prometheus=os.environ.get("STACK_PROMETHEUS", "") not in ("", "0"),
        )
        ports = {**stack.node_ports, **stack.sentinel_ports, **stack.app_ports, "nginx": stack.port}
        print(
            "starting: " + ", ".join(f"{n} on {LOOPBACK}:{p}" for n, p in ports.items()), flush=True
        )
        stack.start()
    except (ProcessError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SettingError as exc:  # the same one line as the app's own check
        print(f"genmb: cannot start: {exc}", file=sys.stderr)
        return 2
    if stack.sentinels:
        print(
            f"redis: {stack.first_primary} is the primary, sentinels on "
            + ", ".join(f"{LOOPBACK}:{p}" for p in stack.sentinel_ports.values()),
            flush=True,
        )
    if stack.cluster:
        print(
            f"redis: a cluster, every slot served; primaries {', '.join(stack.primary_names())}",
            flush=True,
        )
    print(
        f"serving on {stack.url} (nginx -> {', '.join(stack.apps)}; "
        f"{stack.workers} worker(s) each); logs and data in var/stack/; Ctrl-C to stop",
        flush=True,
    )
    print(
        "operator CLI: set -a; . var/stack/stack.env; set +a; .venv/bin/flask --app app ...",
        flush=True,
    )
    if stack.prometheus_port:
        print(
            f"prometheus on http://{LOOPBACK}:{stack.prometheus_port} scraping "
            + ", ".join(f"{n} at {LOOPBACK}:{p}" for n, p in stack.metrics_ports.items())
            + " (dashboard: deploy/grafana/genmb.json)",
            flush=True,
        )
    reported: set[str] = set()
    next_look = time.monotonic()
    try:
        while not stopping:
            for part in stack.parts:
                if not part.running and part.name not in reported:
                    reported.add(part.name)
                    print(
                        f"warning: {part.name} exited ({part.process.returncode}); "  # type: ignore[union-attr]
                        f"see {part.log}",
                        file=sys.stderr,
                        flush=True,
                    )
            if stack.sentinels and time.monotonic() >= next_look:
                next_look = time.monotonic() + 1.0
                if moved := stack.record_primary():
                    print(f"failover: {moved} is the primary now", flush=True)
            time.sleep(0.2)
    finally:
        print(
            "stopping: "
            + ("prometheus, " if stack.prometheus else "")
            + "nginx, the app instances, "
            + ("the sentinels, " if stack.sentinels else "")
            + ("the cluster's nodes" if stack.cluster else "redis"),
            flush=True,
        )
        stack.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
