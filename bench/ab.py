"""Interleaved A/B of `ours` against another checkout of the project (a regression check).

    git worktree add --detach ../genmb-before <commit>       # the revision to compare with
    ln -s "$PWD/.venv" ../genmb-before/.venv                 # the same interpreter and packages
    .venv/bin/python -m bench.ab ../genmb-before [--rounds 6] [--seconds 4] [--workers 2]

Each side gets its own redis-server and gunicorn (same settings, same worker count), its own
Pro user and key created through its own code, and the same Python load, the rounds
alternating A, B, B, A, ... so that whatever else the machine does falls on both. Reported:
requests per second and the app's CPU per request (gunicorn master and workers), per round
and as medians, and B against A.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from statistics import median

from bench.load import PythonLoad, Target
from bench.servers import ME, START_TIMEOUT, RedisServer, RowServer, request
from deploy.processes import ROOT, cpu_seconds

EMAIL, PASSWORD = "ab@example.test", "a long password for the A/B"


def start_side(name: str, tree: Path, workdir: Path, workers: int):
    """Redis, gunicorn of `tree` and a key made through that tree's own code."""
    (workdir / name).mkdir(parents=True)
    redis_server = RedisServer(workdir / name).start()
    env = {
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "ab-secret-not-for-production",
        "GENMB_ENV": "production",
        "TRUSTED_PROXY_COUNT": "1",
        "PASSWORD_SCRYPT_N": "1024",
    }
    # gunicorn of this tree, with this tree's deploy/gunicorn.conf.py.
    app = RowServer(name, "app:create_app()", workers, env, workdir / name, cwd=tree)
    app.start(START_TIMEOUT)
    subprocess.run(
        [str(tree / ".venv" / "bin" / "flask"), "--app", "app", "users", "create", EMAIL,
         "--plan", "pro", "--password", PASSWORD],
        cwd=tree, env={**os.environ, **env}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    forwarded = {"X-Forwarded-For": "10.250.0.1"}
    _, headers, body = request(
        f"{app.url}/auth/login", "POST", {"email": EMAIL, "password": PASSWORD}, forwarded
    )
    cookie, csrf = headers["Set-Cookie"].split(";", 1)[0], json.loads(body)["csrf_token"]
    status, _, body = request(
        f"{app.url}/api/keys",
        "POST",
        {"name": "ab"},
        {"Cookie": cookie, "X-CSRF-Token": csrf, **forwarded},
    )
    if status != 201:
        raise RuntimeError(f"{name}: key creation answered {status}: {body!r}")
    return redis_server, app, json.loads(body)["key"]


def main(argv: list[str] | None = None) -> None:
    """Run the A/B and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("other", type=Path, help="the checkout to compare with (side A)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    trees = {"A (other)": args.other.resolve(), "B (this)": ROOT}
    workdir = Path(tempfile.mkdtemp(prefix="genmb-ab-"))
    sides, load = {}, PythonLoad(args.workers)
    try:
        for index, (name, tree) in enumerate(trees.items()):
            sides[name] = start_side(f"side{index}", tree, workdir, args.workers)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for _, app, key in sides.values():  # untimed warm-up
            load.run(Target(app.url + ME, key), 2, 1)
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            for name in order:
                _, app, key = sides[name]
                pids = app.pids()
                before = cpu_seconds(pids)
                first_address = 1000 + round_no * 20_000 + (0 if name == order[0] else 10_000)
                result = load.run(Target(app.url + ME, key), args.seconds, first_address)
                cpu_us = (cpu_seconds(pids) - before) / max(result.requests, 1) * 1e6
                results[name].append((result.requests / result.seconds, cpu_us))
        medians = {}
        for name, rows in results.items():
            rps, cpu = [r[0] for r in rows], [r[1] for r in rows]
            medians[name] = (median(rps), median(cpu))
            print(f"{name:10} req/s {[round(x) for x in rps]} median {median(rps):.0f} | "
                  f"app CPU µs/req {[round(x) for x in cpu]} median {median(cpu):.0f}")  # fmt: skip
        (a_rps, a_cpu), (b_rps, b_cpu) = medians.values()
        print(f"B/A: {b_rps / a_rps:.3f} × req/s, {b_cpu / a_cpu:.3f} × CPU per request")
    finally:
        load.close()
        for redis_server, app, _ in sides.values():
            app.stop()
            redis_server.stop()


if __name__ == "__main__":
    main()
