"""`--profile`: py-spy samples the workers of bare, common and ours under load, one row at a
time; each sample goes to a stage, and a stage's share of the samples times the row's CPU per
request (measured in the same round) is its µs per request (docs/performance.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from deploy.processes import worker_pids

PROFILED_ROWS = ("bare", "common", "ours")
# A sample goes to the stage of the innermost frame that names one (most specific first
# within a frame). Markers are py-spy frame names: "function (file:line)", site-packages
# trimmed. Frames of NOT_A_STAGE are looked through: TrustedProxies (security/edge.py) wraps
# the whole app (dispatch), and the clock's helpers serve both the gate and the view.
STAGES = (
    ("redis-py send/parse", ("(redis/",)),
    (
        "response serialization",
        ("(marshmallow/", "(flask_smorest/response.py", "(json/", "(flask/json/"),
    ),
    (
        "view",
        ("(blueprints/account.py", "(services/credits.py", "me (bench/baseline_apps.py"),
    ),
    (
        "after_request",
        (
            "process_response (flask/app.py",
            "(security/rate_headers.py",
            "add_headers (security/edge.py",
            "security_header_items (security/edge.py",
            "page_headers (blueprints/web.py",
        ),
    ),
    # The hot path's own dispatch (security/hot_path.py) is what Flask's is on the other path.
    ("WSGI/Flask dispatch", ("HotPath.__call__ (security/hot_path.py",)),
    ("gate Python", ("(security/", "(store/", "(flask_limiter/", "(limits/")),
    ("logging (access line)", ("(gunicorn/glogging.py", "(logging/", "(logs.py", "(deploy/")),
)
# Samples with no stage frame: the innermost of these decides.
FALLBACK = (
    ("WSGI/Flask dispatch", ("(flask/", "(werkzeug/", "(flask_smorest/")),
    ("gunicorn: accept, parse, write, close", ("(gunicorn/",)),
)
NOT_A_STAGE = ("TrustedProxies.__call__ (", "(store/clock.py")


def stage_of(stack: str) -> str:
    """The stage a sampled stack (frames joined by ';', outermost first) belongs to."""
    frames = [f for f in reversed(stack.split(";")) if not any(skip in f for skip in NOT_A_STAGE)]
    for table in (STAGES, FALLBACK):
        for frame in frames:
            for name, markers in table:
                if any(marker in frame for marker in markers):
                    return name
    return "other"


def py_spy() -> str | None:
    """The py-spy binary: the venv's (requirements-dev.txt) or one on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def stacks_prefix(output: Path, row: str = "ours") -> str:
    """The name every stacks file of a row in the run writing `output` starts with."""
    return f"{output.stem}.profile-{row}-"


def start(
    master: int, seconds: float, output: Path, row: str = "ours"
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start one py-spy recorder per worker of `row`, for `seconds`; collapsed stacks beside
    `output` (the results file), as <output stem>.profile-<row>-<pid>.txt."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: make bench installs requirements-dev.txt")
    out_dir = output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = stacks_prefix(output, row)
    # Only the previous stacks of this same results file: other runs' profiles beside it
    # (another --output in the same directory) are theirs to keep. The name is matched
    # exactly (<prefix><pid>.txt), not as a glob pattern: `--output 'run[1].json'` must not
    # take run1.json's stacks, nor `--output a.json` those of a.profile-ours-b.json.
    for old in out_dir.iterdir():
        pid = old.name[len(prefix) : -len(".txt")]
        if old.name.startswith(prefix) and old.name.endswith(".txt") and pid.isdigit():
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
    """Wait for the recorders; the share of samples (percent) in each stage."""
    shares: Counter[str] = Counter()
    for process, path in recorders:
        _, err = process.communicate(timeout=timeout)
        if process.returncode != 0 or not path.exists():
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if count.isdigit():  # py-spy may add a line of its own
                shares[stage_of(stack)] += int(count)
    total = sum(shares.values()) or 1
    return {name: 100 * n / total for name, n in shares.most_common()}
