"""`--profile`: py-spy samples ours' gunicorn workers under load; where their time goes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from deploy.processes import worker_pids

# The first category whose marker appears in a sampled stack gets the sample; most specific
# first. Markers are py-spy frame names ("function (file:line)" with site-packages trimmed).
CATEGORIES = (
    ("Redis round trip: the gate's EVALSHA", ("Storage.run (",)),
    ("flask-limiter's before_request hook", ("Limiter._check_request_limit",)),
    (
        "gate: credentials, digest, attribution, body check",
        ("before_request (security/gate.py", "check_request_body (security/body.py"),
    ),
    ("view + flask-smorest/marshmallow + JSON", ("Flask.dispatch_request",)),
    ("after_request: X-RateLimit-* headers", ("Flask.process_response",)),
    ("Flask/werkzeug: context, session, routing", ("Flask.wsgi_app",)),
    ("gunicorn: access log line", ("Logger.access",)),
    ("gunicorn: parse, write response, close", ("SyncWorker.handle",)),
    ("gunicorn: waiting for / accepting a connection", ("SyncWorker.run",)),
)


def py_spy() -> str | None:
    """The py-spy binary: the venv's (requirements-dev.txt) or one on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def stacks_prefix(output: Path) -> str:
    """The name every stacks file of the run writing `output` starts with."""
    return f"{output.stem}.profile-ours-"


def start(master: int, seconds: float, output: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start one py-spy recorder per worker, for `seconds`; collapsed stacks beside `output`
    (the results file), as <output stem>.profile-ours-<pid>.txt."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: make bench installs requirements-dev.txt")
    out_dir = output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = stacks_prefix(output)
    # Only the previous stacks of this same results file: other runs' profiles beside it
    # (another --output in the same directory) are theirs to keep.
    for old in out_dir.glob(f"{prefix}*.txt"):
        old.unlink()
    recorders = []
    for pid in worker_pids(master):
        path = out_dir / f"{prefix}{pid}.txt"
        command = [
            binary,
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, round(seconds))),
            "-r",
            "200",
            "-f",
            "raw",
            "--nonblocking",
            "-o",
            str(path),
        ]
        recorders.append(
            (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
        )
    return recorders


def finish(
    recorders: list[tuple[subprocess.Popen[bytes], Path]], timeout: float
) -> dict[str, float]:
    """Wait for the recorders; the share of samples (percent) in each category."""
    shares: Counter[str] = Counter()
    for process, path in recorders:
        _, err = process.communicate(timeout=timeout)
        if process.returncode != 0 or not path.exists():
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            name = next(
                (name for name, markers in CATEGORIES if any(m in stack for m in markers)), "other"
            )
            shares[name] += int(count)
    total = sum(shares.values()) or 1
    return {name: 100 * n / total for name, n in shares.most_common()}
