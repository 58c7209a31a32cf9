"""make bench: bare, common, floor and ours on one Redis (ours also over its Unix socket, and
without usage counting or metrics), ours on Sentinel and on a Redis Cluster, and ours on a
Redis full of data (the scale row), interleaved under the same load; a table and JSON.

python -m bench.run [--workers 2] [--rounds 5] [--seconds 4] [--load auto|wrk|python|both]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import profile, scale
from bench.commands import count_per_request, owner_lookup_us
from bench.load import ADDRESS_POOL, LoadGenerator, PythonLoad, RoundResult, Target, Wrk
from bench.report import (
    FLOOR,
    HA_ROWS,
    NO_METRICS,
    NO_USAGE,
    ROWS,
    SCALE,
    TARGETS,
    UNIX,
    summarise,
    table,
)
from bench.scale import Volume
from bench.servers import (
    ME,
    SCRYPT_N,
    START_TIMEOUT,
    RedisServer,
    RowServer,
    request,
    seed_common,
    seed_ours,
)
from config import SETTINGS_BY_NAME, rate_limit_parts
from deploy.local_redis import ClusterGroup, SentinelGroup
from deploy.processes import cpu_seconds
from store.client import Storage, connect
from store.names import KeyNames

RESULTS = Path(__file__).with_name("results") / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; every default keeps `make bench` under about three minutes."""
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers, every row (2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per row (5)")
    p.add_argument("--seconds", type=float, default=4, help="length of one round (4)")
    p.add_argument("--warmup", type=float, default=2, help="untimed load per row first (2)")
    p.add_argument(
        "--load",
        choices=("auto", "wrk", "python", "both"),
        default="auto",
        help="load generator: wrk if on PATH (auto), or force one, or both",
    )
    p.add_argument(
        "--no-wrk", dest="load", action="store_const", const="python", help="same as --load python"
    )
    p.add_argument("--connections", type=int, help="wrk connections (2 per worker)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument(
        "--processes",
        type=int,
        help="Python generator processes, one connection each (1 per worker)",
    )
    p.add_argument(
        "--count-requests",
        type=int,
        default=50,
        help="sequential requests per row in the Redis MONITOR phase (50)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, one more round of bare, common and ours under py-spy: "
        "µs per request by stage",
    )
    p.add_argument(
        "--owner-gets",
        type=int,
        default=2000,
        help="timed GETs of a key's owner index per Redis (the cold-cache cost) (2000)",
    )
    p.add_argument(
        "--scale-keys", type=int, default=1_000_000, help="key records in the scale row (1000000)"
    )
    p.add_argument(
        "--scale-users", type=int, default=100_000, help="users in the scale row (100000)"
    )
    p.add_argument(
        "--scale-windows",
        type=int,
        default=100_000,
        help="live client windows in the scale row (100000)",
    )
    p.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="leave out the scale row (and its ~30 s of loading)",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results ({RESULTS})")
    args = p.parse_args(argv)
    args.rows = ROWS if args.scale else tuple(name for name in ROWS if name != SCALE)
    if args.connections is None:
        args.connections = 2 * args.workers
    if args.processes is None:
        args.processes = args.workers
    if (
        min(
            args.workers,
            args.rounds,
            args.connections,
            args.processes,
            args.count_requests,
            args.owner_gets,
            args.scale_users,
        )
        < 1
        or min(args.scale_keys, args.scale_windows) < 0
        or args.seconds <= 0
        or args.warmup < 0
    ):
        p.error("counts must be at least 1 and --seconds positive")
    return args


def generators(args: argparse.Namespace) -> list[LoadGenerator]:
    """The load generators this run uses, in order."""
    has_wrk = shutil.which("wrk") is not None
    if args.load in ("wrk", "both") and not has_wrk:
        sys.exit("wrk is not on PATH (apt-get install wrk), or use --load python")
    chosen = {"auto": ["wrk" if has_wrk else "python"], "both": ["wrk", "python"]}.get(
        args.load, [args.load]
    )
    return [
        Wrk(args.connections, args.wrk_threads) if name == "wrk" else PythonLoad(args.processes)
        for name in chosen
    ]


def ours_env(redis_url: str) -> dict[str, str]:
    """What ours is told, on any Redis topology."""
    return {
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "GENMB_ENV": "production",
        "TRUSTED_PROXY_COUNT": "1",
        "PASSWORD_SCRYPT_N": str(SCRYPT_N),
    }


def start_servers(
    stack: ExitStack, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Any], dict[str, RowServer], dict[str, str]]:
    """Redis, then ours (to create the key), then both baselines on the same Redis; then a
    Sentinel group and a cluster, each with an ours of its own and its own key. Returns the
    Redis behind each row, the servers and the raw key of each row."""
    redis_server = RedisServer(workdir)
    socket_path = workdir / "redis.sock"
    redis_server.extra_args = ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    redis_server.start()
    stack.callback(redis_server.stop)
    ours = RowServer("ours", "app:create_app()", args.workers, ours_env(redis_server.url), workdir)
    stack.callback(ours.stop)
    ours.start(START_TIMEOUT)
    raw_key, me = seed_ours(redis_server.url, ours)
    seed_common(redis_server.client(), raw_key, me)
    # The baselines ignore ours' settings, but deploy/gunicorn.conf.py checks them at start.
    env = {**ours_env(redis_server.url), "BENCH_ME_JSON": json.dumps(me)}
    servers = {
        name: RowServer(name, f"bench.baseline_apps:{name}_app()", args.workers, env, workdir)
        for name in ("bare", "common", FLOOR)
    }
    for server in servers.values():
        stack.callback(server.stop)
        server.launch()
    for server in servers.values():
        server.wait_healthy(START_TIMEOUT)
    servers["ours"] = ours
    # The same app, Redis, user and key, with per-key usage counting off (issue #14), and
    # with metrics off (issue #17).
    # And ours through the same Redis's Unix socket (the unix row).
    variants = (
        (UNIX, {"REDIS_URL": f"unix://{socket_path}?db=0"}),
        (NO_USAGE, {"KEY_USAGE": "off"}),
        (NO_METRICS, {"METRICS": "off"}),
    )
    for name, setting in variants:
        variant = RowServer(
            name,
            "app:create_app()",
            args.workers,
            {**ours_env(redis_server.url), **setting},
            workdir,
        )
        stack.callback(variant.stop)
        variant.start(START_TIMEOUT)
        servers[name] = variant
    backends: dict[str, Any] = dict.fromkeys(
        ("bare", "common", FLOOR, "ours", UNIX, NO_USAGE, NO_METRICS), redis_server
    )
    keys = dict.fromkeys(backends, raw_key)
    for name, group_type in zip(HA_ROWS, (SentinelGroup, ClusterGroup), strict=True):
        group = group_type(workdir / name)
        stack.callback(group.stop)
        group.start()
        server = RowServer(name, "app:create_app()", args.workers, ours_env(group.url), workdir)
        stack.callback(server.stop)
        server.start(START_TIMEOUT)
        backends[name], servers[name] = group, server
        keys[name], _ = seed_ours(group.url, server)
    if args.scale:
        backends[SCALE], servers[SCALE], keys[SCALE] = start_scale(stack, args, workdir)
    return backends, servers, keys


def start_scale(
    stack: ExitStack, args: argparse.Namespace, workdir: Path
) -> tuple[RedisServer, RowServer, str]:
    """The scale row: ours on a Redis of its own (the same settings as ours'), with its key
    seeded the usual way, then the volume loaded (bench/scale.py)."""
    redis_server = RedisServer(workdir / SCALE)
    (workdir / SCALE).mkdir()
    redis_server.start()
    stack.callback(redis_server.stop)
    server = RowServer(SCALE, "app:create_app()", args.workers, ours_env(redis_server.url), workdir)
    stack.callback(server.stop)
    server.start(START_TIMEOUT)
    raw_key, _ = seed_ours(redis_server.url, server)
    volume = Volume(args.scale_users, args.scale_keys, args.scale_windows)
    print(
        f"loading {volume.keys:,} key records, {volume.users:,} users and {volume.windows:,} "
        "client windows into the scale row's Redis..."
    )
    # The windows are made with the limit the row runs with (ours_env leaves the default).
    limit, window_ms = rate_limit_parts(SETTINGS_BY_NAME["RATELIMIT_GLOBAL"].default)
    storage = Storage(connect(redis_server.url, 60.0), KeyNames())
    args.scale_report = scale.load(storage, volume, limit, window_ms)
    print(f"  {args.scale_report}")
    return redis_server, server, raw_key


def _shape(value: Any) -> Any:
    """A JSON value's structure: its keys, recursively (values left out)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def check_same_body(targets: dict[str, Target]) -> dict[str, int]:
    """Every row answers 200 with the same JSON (ours on Sentinel, Cluster and the scale row's
    Redis: the same fields, of another user); returns each body's size in bytes."""
    bodies = {}
    for name, target in targets.items():
        status, _, body = request(
            target.url,
            headers={"Authorization": f"Bearer {target.key}", "X-Forwarded-For": "10.255.0.1"},
        )
        if status != 200:
            raise RuntimeError(f"{name}: GET /api/me answered {status}: {body!r}")
        bodies[name] = body
    parsed = {name: json.loads(body) for name, body in bodies.items()}
    own_redis = (*HA_ROWS, SCALE)  # another user (of the same email and plan)
    if any(parsed[name] != parsed["ours"] for name in parsed if name not in own_redis) or any(
        _shape(parsed[name]) != _shape(parsed["ours"]) for name in parsed if name in own_redis
    ):
        raise RuntimeError(f"the rows answer different JSON: {parsed}")
    return {name: len(body) for name, body in bodies.items()}


def timed_round(
    generator: LoadGenerator,
    target: Target,
    seconds: float,
    cursor: int,
    server_pids: list[int],
    redis_pids: list[int],
) -> RoundResult:
    """One round, with the CPU time the row's server and Redis (every process of its
    topology: replicas and sentinels too) spent on it."""
    server_before, redis_before = cpu_seconds(server_pids), cpu_seconds(redis_pids)
    result = generator.run(target, seconds, cursor)
    result.server_cpu = cpu_seconds(server_pids) - server_before
    result.redis_cpu = cpu_seconds(redis_pids) - redis_before
    return result


def measure(
    generator: LoadGenerator,
    targets: dict[str, Target],
    servers: dict[str, RowServer],
    backends: dict[str, Any],
    args: argparse.Namespace,
    cursor: int,
) -> tuple[dict[str, list[RoundResult]], int, int]:
    """Warm every row, then round-robin rounds (rotating who goes first) to cancel drift.

    Returns the rounds per row, the failures seen during warm-up, and the address cursor.
    """
    rows = list(targets)
    warmup_failures = 0
    for name in rows:
        if args.warmup:
            result = generator.run(targets[name], args.warmup, cursor)
            warmup_failures += result.failures
            cursor += result.requests + result.socket_errors + 1000
    rounds: dict[str, list[RoundResult]] = {name: [] for name in rows}
    for r in range(args.rounds):
        for name in rows[r % len(rows) :] + rows[: r % len(rows)]:
            result = timed_round(
                generator,
                targets[name],
                args.seconds,
                cursor,
                servers[name].pids(),
                backends[name].pids(),
            )
            cursor += result.requests + result.socket_errors + 1000
            rounds[name].append(result)
            print(
                f"  {generator.name} round {r + 1}/{args.rounds} {name:>8}: "
                f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  CPU "
                f"{result.cpu_us(result.server_cpu + result.redis_cpu):5.0f} us/req  "
                f"failures {result.failures}",
                flush=True,
            )
    return rounds, warmup_failures, cursor % ADDRESS_POOL


def profile_rows(
    load: LoadGenerator,
    targets: dict[str, Target],
    servers: dict[str, RowServer],
    backends: dict[str, Any],
    args: argparse.Namespace,
    cursor: int,
) -> tuple[dict[str, Any], list[RoundResult]]:
    """One extra (unrecorded) round of bare, common and ours each, with py-spy on every
    worker: µs per request in each stage (its share of the samples times the round's CPU per
    request), the row's Redis CPU and Redis's command time (Lua included) per request."""
    report, results = {}, []
    for name in profile.PROFILED_ROWS:
        server, redis_client = servers[name], backends[name].client()
        assert server.process is not None
        print(f"profiling {name} with py-spy for {args.seconds:g} s ({load.name} load)...")
        redis_client.config_resetstat()
        recorders = profile.start(server.process.pid, args.seconds, args.output, name)
        result = timed_round(
            load, targets[name], args.seconds, cursor, server.pids(), backends[name].pids()
        )
        shares = profile.finish(recorders, timeout=args.seconds + 30)
        stats = redis_client.info("commandstats")
        cursor += result.requests + result.socket_errors + 1000
        results.append(result)
        server_us = result.cpu_us(result.server_cpu)
        report[name] = {
            "shares": shares,
            "server_cpu_us": server_us,
            "redis_cpu_us": result.cpu_us(result.redis_cpu),
            "redis_command_us": sum(s["usec"] for s in stats.values()) / max(result.requests, 1),
            "stages_us": {stage: share * server_us / 100 for stage, share in shares.items()},
        }
    print(profile_table(report))
    return report, results


def profile_table(report: dict[str, Any]) -> str:
    """µs per request by stage, one column per profiled row."""
    rows = list(report)
    # Each stage once, in table order (a stage may be named in both tables).
    stages = list(dict.fromkeys(s for s, _ in (*profile.STAGES, *profile.FALLBACK))) + ["other"]
    lines = [f"{'stage (µs per request)':<40}" + "".join(f"{r:>9}" for r in rows)]
    for stage in stages:
        cells = "".join(f"{report[r]['stages_us'].get(stage, 0):>9.0f}" for r in rows)
        lines.append(f"{stage:<40}{cells}")
    for label, field in (
        ("= gunicorn workers' CPU", "server_cpu_us"),
        ("Redis: CPU of redis-server", "redis_cpu_us"),
        ("Redis: of which command time (Lua)", "redis_command_us"),
    ):
        lines.append(f"{label:<40}" + "".join(f"{report[r][field]:>9.0f}" for r in rows))
    return "\n".join(lines)


def machine(redis_server: RedisServer) -> dict[str, Any]:
    """What the numbers were measured on."""
    wrk = shutil.which("wrk")
    wrk_version = (
        subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        if wrk
        else None
    )
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "redis": redis_server.client().info("server")["redis_version"],
        "wrk": wrk_version,
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start everything, measure with each generator, count Redis commands; the report."""
    loads = generators(args)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k != "scale_report"
        },
        "targets": TARGETS,
        "results": {},
    }
    failures = 0
    with ExitStack() as stack:
        for load in loads:
            stack.callback(load.close)
        print(
            f"starting redis-server, a Sentinel group, a cluster and {len(args.rows)} x gunicorn "
            f"({args.workers} workers each)..."
        )
        backends, servers, keys = start_servers(stack, args, workdir)
        report["machine"] = machine(backends["ours"])
        targets = {name: Target(servers[name].url + ME, keys[name]) for name in args.rows}
        report["response_bytes"] = check_same_body(targets)
        cursor = 0
        for load in loads:
            print(f"measuring with {load.name}: {args.rounds} rounds x {args.seconds:g} s per row")
            rounds, warmup_failures, cursor = measure(
                load, targets, servers, backends, args, cursor
            )
            summary = report["results"][load.name] = summarise(rounds)
            summary["warmup_failures"] = warmup_failures
            failures += warmup_failures + sum(row["failures"] for row in summary["rows"].values())
        if args.profile:
            report["profile"], profiled = profile_rows(
                loads[0], targets, servers, backends, args, cursor
            )
            for result in profiled:
                cursor += result.requests + result.socket_errors + 1000
                failures += result.failures
        if args.scale:
            report["scale"] = args.scale_report
        report["redis_commands"] = {}
        for name in args.rows:
            per_request, by_name, by_node, statuses = count_per_request(
                backends[name], targets[name], args.count_requests, cursor
            )
            cursor += args.count_requests
            failures += sum(n for code, n in statuses.items() if code != 200)
            report["redis_commands"][name] = {
                "per_request": per_request,
                "by_command": by_name,
                "by_primary_port": by_node,
                "requests": args.count_requests,
            }
        report["owner_lookup"] = {
            name: owner_lookup_us(backends[name].url, keys[name], args.owner_gets)
            for name in ("ours", *HA_ROWS)
        }
    report["failures"] = failures
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    return report


def print_report(report: dict[str, Any]) -> None:
    """The tables, the Redis commands as counted, and what the machine was doing."""
    m, commands = report["machine"], report["redis_commands"]
    print(
        f"\n{m['nproc']} cores; load average {m['loadavg_at_start'][0]:.2f} at the start, "
        f"{m['loadavg_at_end'][0]:.2f} at the end (anything else running skews the rows)"
    )
    sizes = ", ".join(f"{name} {size}" for name, size in report["response_bytes"].items())
    print(f"GET /api/me body, bytes: {sizes}\n")
    for name, summary in report["results"].items():
        print(table(name, summary, commands), end="\n\n")
    for name in commands:
        nodes = commands[name]["by_primary_port"]
        where = f", by primary: {nodes}" if len(nodes) > 1 else ""
        print(
            f"redis commands, {name}: {commands[name]['by_command']} "
            f"over {commands[name]['requests']} requests{where}"
        )
    if "scale" in report:
        loaded = report["scale"]
        seconds = sum(loaded[f"{part}_seconds"] for part in ("user", "key", "window"))
        print(
            f"{SCALE} row's Redis: {loaded['keys']:,} key records ({loaded['bytes_per_key']} "
            f"bytes each), {loaded['users']:,} users ({loaded['bytes_per_user']} bytes each), "
            f"{loaded['windows']:,} client windows ({loaded['bytes_per_window']} bytes each); "
            f"loaded in {seconds:.0f} s, used_memory {loaded['used_memory'] / 2**20:.0f} MiB"
        )
    for name, timing in report["owner_lookup"].items():
        print(
            f"cold owner cache, {name}: GET keyowner round trip p50 {timing['p50_us']:.0f} us, "
            f"p90 {timing['p90_us']:.0f} us ({report['settings']['owner_gets']} GETs)"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print it, write the JSON; exit 1 if any request failed."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genmb-bench-") as tmp:
        report = run(args, Path(tmp))
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    if report["failures"]:
        print(
            f"FAILED: {report['failures']} requests were refused or failed; "
            "the numbers are not valid"
        )
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
