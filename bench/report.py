"""Turning rounds into the summary: medians, ratios against the targets, and the table."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.load import RoundResult

# ours on Sentinel and on a Redis Cluster: the same app and load, each on its own Redis.
HA_ROWS = ("sentinel", "cluster")
# ours on the same Redis with per-key usage counting off (KEY_USAGE=off): what counting costs.
NO_USAGE = "nousage"
# ours on the same Redis with metrics off (METRICS=off): what recording metrics costs.
NO_METRICS = "nometrics"
# ours on its own Redis holding a million key records, 100,000 users and 100,000 live client
# windows (bench/scale.py): whether the cost per request stays flat as data grows (issue #15).
SCALE = "scale"
# ours on the same redis-server through its Unix socket instead of loopback TCP: what a
# Redis on the app's own host saves (a deployment choice; the ours row stays on TCP).
UNIX = "unix"
# bare Flask plus ours' one gate EVALSHA and nothing else of ours (bench/baseline_apps.py):
# the least a Flask app doing ours' Redis work costs, so ours/floor is the cost of the rest.
FLOOR = "floor"
ROWS = ("bare", "common", FLOOR, "ours", UNIX, NO_USAGE, NO_METRICS, *HA_ROWS, SCALE)
# Issue #14: usage counting may cost at most 5% per request (and no Redis command).
USAGE_COST_LIMIT = 1.05
# Issue #17: metrics may cost at most 3% CPU per request.
METRICS_COST_LIMIT = 1.03
TARGETS = {
    "ours/bare": 0.6,
    "ours/common": 1.5,
    "redis_commands_per_request": 1,
    "scale/ours": 0.95,  # issue #15: throughput with the data within 5% of the empty store's
}


def _row(results: list[RoundResult]) -> dict[str, Any]:
    """One row: medians over its rounds, totals, and every round as measured."""
    statuses: Counter[int] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return {
        "rps": statistics.median(r.rps for r in results),
        "rps_min": min(r.rps for r in results),
        "rps_max": max(r.rps for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "server_cpu_us": statistics.median(r.cpu_us(r.server_cpu) for r in results),
        "redis_cpu_us": statistics.median(r.cpu_us(r.redis_cpu) for r in results),
        "requests": sum(r.requests for r in results),
        "failures": sum(r.failures for r in results),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "rounds": [
            {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "requests": r.requests,
                "seconds": r.seconds,
                "socket_errors": r.socket_errors,
                "server_cpu_us": r.cpu_us(r.server_cpu),
                "redis_cpu_us": r.cpu_us(r.redis_cpu),
            }
            for r in results
        ],
    }


def summarise(rounds: dict[str, list[RoundResult]]) -> dict[str, Any]:
    """Every row, the req/s ratios, and the same ratios by CPU cost per request."""
    rows = {name: _row(results) for name, results in rounds.items()}

    def cost(name: str) -> float:
        """Server plus Redis CPU per request of a row."""
        return rows[name]["server_cpu_us"] + rows[name]["redis_cpu_us"]

    ours = rows["ours"]["rps"]
    return {
        "rows": rows,
        "ratios": {f"ours/{b}": ours / rows[b]["rps"] for b in ("bare", "common")},
        # Paired within each round (the rows ran back to back): a check on drift.
        "ratios_paired_median": {
            f"ours/{b}": statistics.median(
                o.rps / x.rps for o, x in zip(rounds["ours"], rounds[b], strict=True)
            )
            for b in ("bare", "common")
        },
        # Capacity on a machine of its own: the inverse ratio of server CPU per request.
        "ratios_by_cpu_cost": {f"ours/{b}": cost(b) / cost("ours") for b in ("bare", "common")},
        # What a topology costs against one Redis: its req/s and its CPU per request, as a
        # fraction and a multiple of the ours row's.
        # Usage counting: ours' cost per request (CPU, and 1/req/s) against ours without it.
        "usage_counting": {
            "cpu_per_request": cost("ours") / cost(NO_USAGE),
            "rps": ours / rows[NO_USAGE]["rps"],
            "rps_paired_median": statistics.median(
                o.rps / x.rps for o, x in zip(rounds["ours"], rounds[NO_USAGE], strict=True)
            ),
        },
        # Metrics: the same comparison against ours with METRICS=off.
        "metrics": {
            "cpu_per_request": cost("ours") / cost(NO_METRICS),
            "server_cpu_per_request": rows["ours"]["server_cpu_us"]
            / rows[NO_METRICS]["server_cpu_us"],
            "rps": ours / rows[NO_METRICS]["rps"],
            "rps_paired_median": statistics.median(
                o.rps / x.rps for o, x in zip(rounds["ours"], rounds[NO_METRICS], strict=True)
            ),
        },
        # The floor against bare, and ours against the floor: req/s and by CPU cost.
        "floor": {
            "floor/bare": rows[FLOOR]["rps"] / rows["bare"]["rps"],
            "floor/bare_by_cpu_cost": cost("bare") / cost(FLOOR),
            "ours/floor": ours / rows[FLOOR]["rps"],
            "ours/floor_by_cpu_cost": cost(FLOOR) / cost("ours"),
        },
        # ours over the Unix socket against bare, as ours/bare is: req/s and by CPU cost.
        "unix": {
            "rps": rows[UNIX]["rps"] / ours,
            "cpu_per_request": cost(UNIX) / cost("ours"),
            "unix/bare": rows[UNIX]["rps"] / rows["bare"]["rps"],
            "unix/bare_by_cpu_cost": cost("bare") / cost(UNIX),
        },
        "against_single": {
            name: {"rps": rows[name]["rps"] / ours, "cpu_per_request": cost(name) / cost("ours")}
            for name in HA_ROWS
        },
        # The full store against the empty one: req/s (and paired by round), CPU per request.
        "scale": {
            "rps": rows[SCALE]["rps"] / ours,
            "rps_paired_median": statistics.median(
                full.rps / empty.rps
                for full, empty in zip(rounds[SCALE], rounds["ours"], strict=True)
            ),
            "cpu_per_request": cost(SCALE) / cost("ours"),
        }
        if SCALE in rows
        else None,
    }


def table(generator: str, summary: dict[str, Any], commands: dict[str, Any]) -> str:
    """The human-readable table for one load generator."""
    rows, ours = summary["rows"], summary["rows"]["ours"]["rps"]
    lines = [
        f"load generator: {generator}",
        f"{'row':<8}{'req/s':>7}{'(min-max)':>13}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'ours/row':>9}{'CPU us/req':>12}{'(redis)':>8}{'redis cmds':>12}{'failed':>8}",
    ]
    for name in rows:
        row = rows[name]
        ratio = f"{ours / row['rps']:.2f}" if name != "ours" else "-"
        spread = f"({row['rps_min']:.0f}-{row['rps_max']:.0f})"
        cpu = row["server_cpu_us"] + row["redis_cpu_us"]
        lines.append(
            f"{name:<8}{row['rps']:>7.0f}{spread:>13}{row['p50_ms']:>8.2f}"
            f"{row['p99_ms']:>8.2f}{ratio:>9}{cpu:>12.0f}{row['redis_cpu_us']:>8.0f}"
            f"{commands[name]['per_request']:>12.2f}{row['failures']:>8}"
        )
    r, c = summary["ratios"], summary["ratios_by_cpu_cost"]
    lines += [
        f"ours/bare   {r['ours/bare']:.2f} req/s, {c['ours/bare']:.2f} by CPU cost "
        f"(target >= {TARGETS['ours/bare']})",
        f"ours/common {r['ours/common']:.2f} req/s, {c['ours/common']:.2f} by CPU cost "
        f"(target >= {TARGETS['ours/common']})",
        f"ours: {commands['ours']['per_request']:.2f} Redis commands per GET /api/me "
        f"(target {TARGETS['redis_commands_per_request']})",
    ]
    usage = summary["usage_counting"]
    lines.append(
        f"usage counting: ours costs {usage['cpu_per_request']:.3f} x {NO_USAGE}'s CPU per "
        f"request, {usage['rps']:.3f} x its req/s (paired {usage['rps_paired_median']:.3f}); "
        f"{commands['ours']['per_request']:.2f} vs {commands[NO_USAGE]['per_request']:.2f} Redis "
        f"commands per GET (limit {USAGE_COST_LIMIT:.2f} x the cost, same commands)"
    )
    cost_of_metrics = summary["metrics"]
    lines.append(
        f"metrics: ours costs {cost_of_metrics['cpu_per_request']:.3f} x {NO_METRICS}'s CPU per "
        f"request (app alone {cost_of_metrics['server_cpu_per_request']:.3f}), "
        f"{cost_of_metrics['rps']:.3f} x its req/s (paired "
        f"{cost_of_metrics['rps_paired_median']:.3f}); limit {METRICS_COST_LIMIT:.2f} x the cost"
    )
    floor = summary["floor"]
    lines.append(
        f"{FLOOR:<11} bare Flask + ours' one gate call: {floor['floor/bare']:.2f} x bare's "
        f"req/s, {floor['floor/bare_by_cpu_cost']:.2f} by CPU cost; ours/floor "
        f"{floor['ours/floor']:.2f} req/s, {floor['ours/floor_by_cpu_cost']:.2f} by CPU cost"
    )
    unix = summary["unix"]
    lines.append(
        f"{UNIX:<11} {unix['rps']:.3f} x ours' req/s, {unix['cpu_per_request']:.3f} x its CPU "
        f"per request (Redis over its Unix socket): {unix['unix/bare']:.2f} x bare's req/s, "
        f"{unix['unix/bare_by_cpu_cost']:.2f} by CPU cost; {commands[UNIX]['per_request']:.2f} "
        "Redis commands per GET"
    )
    if summary["scale"] is not None:
        scale = summary["scale"]
        lines.append(
            f"{SCALE:<11} {scale['rps']:.3f} x ours' req/s (paired "
            f"{scale['rps_paired_median']:.3f}; target >= {TARGETS['scale/ours']}), "
            f"{scale['cpu_per_request']:.3f} x its CPU per "
            f"request; {commands[SCALE]['per_request']:.2f} Redis commands per GET"
        )
    for name, cost in summary["against_single"].items():
        lines.append(
            f"{name:<11} {cost['rps']:.2f} x ours' req/s, {cost['cpu_per_request']:.2f} x its "
            f"CPU per request; {commands[name]['per_request']:.2f} Redis commands per GET"
        )
    return "\n".join(lines)
