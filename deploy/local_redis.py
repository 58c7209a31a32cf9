"""Throwaway Redis topologies on free loopback ports, for the tests and the benchmark: one
redis-server, a Sentinel group, a six-node cluster; and counting what clients send them with
MONITOR. Not the production topology (that is deploy/topology.py, run by deploy/stack.py):
no password, no persistence unless asked, settings chosen for fast tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from deploy.processes import (
    LOOPBACK,
    Process,
    ProcessError,
    free_port,
    program,
    wait_until,
)

__all__ = [
    "ClusterGroup",
    "CommandRecorder",
    "NodeRecorders",
    "RedisServer",
    "SentinelGroup",
    "is_setup",
]


# A client announcing itself on a new pooled connection, and our own stop marker.
SETUP_COMMANDS = frozenset({"CLIENT", "HELLO", "SELECT", "ECHO", "AUTH"})


def is_setup(command: str) -> bool:
    """A command a client sends to set up a connection, or the cluster client's one-time
    bare COMMAND (its command table); COMMAND GETKEYS on the request path is not set-up."""
    return command.split()[0].upper() in SETUP_COMMANDS or command.strip().upper() == "COMMAND"


class CommandRecorder:
    """Records every command clients send to Redis; a script's own calls (lua) are left out."""

    STOP = "genmb-monitor-stop"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.commands: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        """Collect entries until our own stop marker comes through."""
        with self.client.monitor() as monitor:
            self._ready.set()
            for entry in monitor.listen():
                if self.STOP in entry["command"]:
                    return
                self.commands.append(entry)

    def __enter__(self) -> CommandRecorder:
        """Start monitoring; returns once MONITOR is in effect."""
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.1)  # MONITOR is registered once its reply arrives
        return self

    def __exit__(self, *exc: object) -> None:
        """Send the stop marker and wait for the monitor thread."""
        self.client.echo(self.STOP)
        self._thread.join(10)

    def client_commands(self) -> list[str]:
        """Every command clients sent (no script-internal ones), as MONITOR shows it, without
        the sentinels' and replicas' own connections (their PING, INFO, PUBLISH, REPLCONF)."""
        infrastructure = {
            client["addr"]
            for client in self.client.client_list()
            if client.get("name", "").startswith("sentinel-") or "S" in client.get("flags", "")
        }
        return [
            e["command"]
            for e in self.commands
            if e.get("client_type") != "lua"
            and f"{e.get('client_address')}:{e.get('client_port')}" not in infrastructure
        ]

    def sent_by_clients(self) -> Counter[str]:
        """Command names as clients sent them, connection set-up excluded."""
        return Counter(
            command.split()[0].upper()
            for command in self.client_commands()
            if not is_setup(command)
        )


class NodeRecorders:
    """A CommandRecorder on every primary of a server, Sentinel group or cluster; the counts
    are summed (on Cluster one request's scripts go to different nodes)."""

    def __init__(self, server) -> None:  # noqa: ANN001 - RedisServer, SentinelGroup, Cluster
        self.recorders = [CommandRecorder(client) for client in server.primary_clients()]

    def __enter__(self) -> NodeRecorders:
        for recorder in self.recorders:
            recorder.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for recorder in self.recorders:
            recorder.__exit__(*exc)

    def sent_by_clients(self) -> Counter[str]:
        """Command names as clients sent them, over every primary."""
        return sum((r.sent_by_clients() for r in self.recorders), Counter())

    def client_commands(self) -> list[str]:
        """Every command clients sent, over every primary."""
        return [command for r in self.recorders for command in r.client_commands()]


class RedisServer:
    """A redis-server of the tests' own, on a free port under a temporary directory."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        self.binary = program("redis-server")
        self.directory, self.appendonly = directory, appendonly
        self.port = free_port()
        self.part: Process | None = None
        self.extra_args: list[str] = []  # e.g. --replicaof, for a replica of a SentinelGroup

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The redis-server process of the last start, if any."""
        return self.part.process if self.part else None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A fresh client with short timeouts."""
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def primary_clients(self) -> list[redis.Redis]:
        """A plain client of each primary: this one."""
        return [self.client()]

    def pids(self) -> list[int]:
        """The process (for its CPU time): this server."""
        return [self.process.pid] if self.process else []

    def start(self) -> RedisServer:
        """Start (or restart) the server on the same port and directory."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.directory / "redis.log"),
            *self.extra_args,
        ]
        if self.part is not None:
            self.part.stop()  # after a kill(): closes its log
        log = self.directory / "redis.log"
        self.part = Process(f"redis-server:{self.port}", args, dict(os.environ), log, self.ping)
        self.part.start()
        return self

    def ping(self) -> bool:
        """True when the server answers PING."""
        with self.client() as client:
            return bool(client.ping())

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a clean shutdown)."""
        if self.part is not None:
            self.part.stop()

    def kill(self) -> None:
        """Kill the server without letting it flush anything (SIGKILL)."""
        if self.part is not None:
            self.part.kill()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answers."""
        assert self.part is not None
        self.part.signal_group(signal.SIGSTOP)

    def resume_if_paused(self) -> None:
        """SIGCONT a running process (harmless when it was not stopped)."""
        if self.part is not None and self.part.running:
            self.part.signal_group(signal.SIGCONT)

    def resume(self) -> None:
        """Thaw a paused server (SIGCONT)."""
        assert self.part is not None
        self.part.signal_group(signal.SIGCONT)


SENTINEL_SERVICE = "genmb"


class SentinelGroup:
    """A primary, two replicas and three sentinels (quorum 2), each on a free loopback port.

    Offers what the tests use of a RedisServer (`url`, `client()`) so that the contract suite
    runs unchanged against it; `client()` always reaches the current primary.
    """

    DOWN_AFTER_MS = 1000

    def __init__(
        self, directory: Path, replicas: int = 2, sentinels: int = 3, appendonly: bool = False
    ) -> None:
        self.directory = directory
        self.nodes = [
            RedisServer(directory / f"node{i}", appendonly=appendonly) for i in range(1 + replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.sentinels: list[Process] = []

    @property
    def url(self) -> str:
        """redis+sentinel://127.0.0.1:<p1>,...:<p3>/genmb/0."""
        hosts = ",".join(f"{LOOPBACK}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}/0"

    def start(self) -> SentinelGroup:
        """Start the data nodes, then the sentinels, and wait until they all know each other."""
        primary_port = self.nodes[0].port
        for index, node in enumerate(self.nodes):
            node.directory.mkdir(parents=True, exist_ok=True)
            node.extra_args = [] if index == 0 else ["--replicaof", LOOPBACK, str(primary_port)]
            node.start()
        for index, port in enumerate(self.sentinel_ports):
            folder = self.directory / f"sentinel{index}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind {LOOPBACK}\ndir {folder}\n"
                f"logfile {folder / 'sentinel.log'}\n"
                f"sentinel monitor {SENTINEL_SERVICE} {LOOPBACK} {primary_port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {self.DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
                f"sentinel parallel-syncs {SENTINEL_SERVICE} 2\n"
            )
            sentinel = Process(
                f"sentinel:{port}",
                [self.nodes[0].binary, str(conf), "--sentinel"],
                dict(os.environ),
                folder / "sentinel.log",
                lambda index=index: self.sentinel_client(index).ping(),
            )
            sentinel.launch()
            self.sentinels.append(sentinel)
        self.wait_settled(primary_port)
        return self

    def sentinel_client(self, index: int = 0) -> redis.Redis:
        """A client of one sentinel."""
        return redis.Redis(
            host=LOOPBACK,
            port=self.sentinel_ports[index],
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def primary_port(self) -> int:
        """The primary's port, as the first sentinel reports it."""
        with self.sentinel_client() as sentinel:
            return int(sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)[1])

    def node(self, port: int) -> RedisServer:
        """The data node listening on `port`."""
        return next(node for node in self.nodes if node.port == port)

    def primary(self) -> RedisServer:
        """The data node that is primary now."""
        return self.node(self.primary_port())

    def client(self) -> redis.Redis:
        """A plain client of the current primary."""
        return self.primary().client()

    def primary_clients(self) -> list[redis.Redis]:
        """A plain client of each primary: the current one."""
        return [self.client()]

    def pids(self) -> list[int]:
        """The processes (for their CPU time): every data node and sentinel."""
        return [pid for node in self.nodes for pid in node.pids()] + [
            pid for sentinel in self.sentinels for pid in sentinel.pids()
        ]

    def wait_settled(self, primary_port: int, timeout: float = 60) -> None:
        """Every sentinel names `primary_port` as primary and sees every replica and sentinel."""
        replicas, others = len(self.nodes) - 1, len(self.sentinel_ports) - 1
        unsettled = ["not asked yet"]

        def settled() -> bool:
            for index in range(len(self.sentinel_ports)):
                with self.sentinel_client(index) as sentinel:
                    state = sentinel.sentinel_master(SENTINEL_SERVICE)
                    seen = sentinel.sentinel_slaves(SENTINEL_SERVICE)
                live_replicas = [
                    r
                    for r in seen
                    if not (r["is_sdown"] or r["is_odown"]) and r["master-link-status"] == "ok"
                ]
                unsettled[0] = (
                    f"sentinel {index}: primary port {state['port']} (sdown {state['is_sdown']}),"
                    f" {state['num-other-sentinels']} other sentinels, replicas "
                    + ", ".join(f"{r['port']}:{r['flags']}:{r['master-link-status']}" for r in seen)
                )
                if (
                    int(state["port"]) != primary_port
                    or state["is_sdown"]
                    or len(live_replicas) < replicas
                    or state["num-other-sentinels"] < others
                ):
                    return False
            with self.node(primary_port).client() as primary:
                linked = primary.info("replication")["connected_slaves"]
            unsettled[0] = f"the primary has {linked} replicas linked"
            return linked >= replicas

        try:
            wait_until(settled, timeout, "the Sentinel group", interval=0.1)
        except ProcessError:
            raise TimeoutError(
                f"Sentinel group not settled on {primary_port}: {unsettled[0]}"
            ) from None

    def wait_for_new_primary(self, old_port: int, timeout: float = 30) -> int:
        """Wait until the sentinels promoted another node; returns its port."""

        def promoted() -> bool:
            with self.sentinel_client() as sentinel:
                addr = sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
            return (
                int(addr[1]) != old_port
                and self.node(int(addr[1])).client().info("replication")["role"] == "master"
            )

        wait_until(promoted, timeout, "a promoted replica")
        return self.primary_port()

    def stop(self) -> None:
        """Stop the sentinels, then the data nodes."""
        for sentinel in self.sentinels:
            sentinel.stop(timeout=5)
        self.sentinels = []
        for node in self.nodes:
            node.resume_if_paused()
            node.stop()

    def restart_clean(self) -> SentinelGroup:
        """Stop everything and start it again on the same ports, empty, the first node the
        primary (clients keep their URL: the sentinels' addresses do not change)."""
        self.stop()
        for node in self.nodes:
            for leftover in node.directory.glob("*"):
                if leftover.is_file():
                    leftover.unlink()
        return self.start()


class ClusterGroup:
    """A Redis Cluster of three primaries and three replicas on free loopback ports.

    Offers what the tests use of a RedisServer (`url`, `client()`, a cluster client that
    routes each key to its node); `primary_clients()` reaches each primary directly.
    """

    NODE_TIMEOUT_MS = 1000

    def __init__(self, directory: Path, nodes: int = 6) -> None:
        self.directory = directory
        self.nodes = [RedisServer(directory / f"node{i}") for i in range(nodes)]

    @property
    def url(self) -> str:
        """redis+cluster://127.0.0.1:<p1>,...:<p6>."""
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{n.port}" for n in self.nodes)

    def start(self) -> ClusterGroup:
        """Start the nodes, join them with redis-cli --cluster create, wait for state ok."""
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            node.extra_args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node.directory / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.NODE_TIMEOUT_MS),
                # The bus port defaults to port + 10000, past 65535 for a
                # high free port: pick one of its own.
                "--cluster-port",
                str(free_port()),
            ]
            node.start()
        subprocess.run(
            [
                program("redis-cli"),
                "--cluster",
                "create",
                *(f"{LOOPBACK}:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_healthy()
        return self

    def live_nodes(self) -> list[RedisServer]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.process and n.process.poll() is None]

    def wait_healthy(self, timeout: float = 60) -> None:
        """Every running node reports cluster_state ok, all slots served, and three primaries
        with a replica each (so the next failover has a replica to promote)."""

        def healthy() -> bool:
            for node in self.live_nodes():
                with node.client() as c:
                    info = c.cluster("info")
                    if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                        return False
            roles = Counter(self._role(n) for n in self.live_nodes())
            return roles["master"] == 3 and roles["slave"] == len(self.live_nodes()) - 3

        wait_until(healthy, timeout, "the cluster", interval=0.1)

    @staticmethod
    def _role(node: RedisServer) -> str:
        with node.client() as c:
            info = c.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return "syncing"
            return info["role"]

    def primaries(self) -> list[RedisServer]:
        """The running nodes that are primaries now."""
        return [n for n in self.live_nodes() if self._role(n) == "master"]

    def primary_for(self, key: str) -> RedisServer:
        """The primary that serves `key`'s slot."""
        with self.client() as c:
            node = c.get_node_from_key(key)
        return next(n for n in self.nodes if n.port == int(node.port))

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The running nodes that replicate `primary`."""
        found = []
        for node in self.live_nodes():
            with node.client() as c:
                info = c.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                found.append(node)
        return found

    def primary_clients(self) -> list[redis.Redis]:
        """A plain client of each primary (MONITOR, INFO: one node at a time)."""
        return [n.client() for n in self.primaries()]

    def pids(self) -> list[int]:
        """The processes (for their CPU time): every node, primary or replica."""
        return [pid for node in self.nodes for pid in node.pids()]

    def client(self) -> RedisCluster:
        """A cluster client of the tests' own: routes each key to its node."""
        return RedisCluster(
            host=LOOPBACK,
            port=self.live_nodes()[0].port,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()
