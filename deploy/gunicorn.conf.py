"""gunicorn settings, from the environment; logs go to stdout/stderr through the key redactor."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile

from gunicorn import util

from config import load_settings
from deploy.access_log import LeanAccess
from logs import formatter, install_filter
from store.redis_url import EMBEDDED_URL


class RedactingLogger(LeanAccess):
    """gunicorn's logger with the key-redacting filter on its error and access logs (and an
    access line that computes only the atoms its format names: deploy/access_log.py)."""

    def setup(self, cfg):  # noqa: ANN001 - gunicorn's signature
        """Set up gunicorn's handlers, then put the filter on them."""
        super().setup(cfg)
        install_filter(self.error_log)
        install_filter(self.access_log)
        if SETTINGS["LOG_FORMAT"] == "json":  # one JSON object per line, as the app's
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                handler.setFormatter(formatter("json"))


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:  # noqa: ANN001
    """gunicorn's own refusals (a malformed request line or header, headers too large) in the
    service's JSON envelope instead of an HTML page. The request is never echoed back: it may
    hold a key (gunicorn's HTML page quotes the offending header)."""
    code = "_".join(reason.lower().split()) or "bad_request"
    body = json.dumps({"error": {"code": code, "message": f"{reason}: the request is malformed."}})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin1"))


# Workers call util.write_error for requests that never reach the app.
util.write_error = write_json_error

# Every setting (the app's and these) is read and checked here, once, in gunicorn's master
# while it reads this file, before any worker forks (the table: config.SETTINGS). A bad one
# stops gunicorn with one line naming the variable, its value and what is allowed, exit
# code 2 — never a traceback, never a line per worker, never a fallback to a default.
# (gunicorn lets SystemExit through; a HUP re-reads this file with the same environment.)
try:
    SETTINGS = load_settings()
except RuntimeError as exc:
    print(f"genmb: cannot start: {exc}", file=sys.stderr, flush=True)
    sys.exit(2)

bind = SETTINGS["BIND"]
# The embedded store (REDIS_URL=memory://) lives inside one process: two workers would be two
# stores (a user signed up on one is unknown to the other). One worker, whatever WORKERS or
# --workers say (on_starting below overrides the command line too).
EMBEDDED = SETTINGS["REDIS_URL"].startswith(EMBEDDED_URL)
workers = 1 if EMBEDDED else SETTINGS["WORKERS"]


# Metrics (prometheus_client's multiprocess mode): every worker writes its values into
# PROMETHEUS_MULTIPROC_DIR and a scrape sums them. It must be in the environment before any
# worker imports prometheus_client (the master forks them from here, so nothing in this file
# imports it at module level). Without a directory of the operator's, each start gets a
# private one, removed at exit.
METRICS = SETTINGS["METRICS"] == "on"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWN_DIR_ENV = "GENMB_OWN_METRICS_DIR"  # survives a HUP, which re-reads this file
# scripts/run.sh's way to tell its own gunicorn from another server answering on the address
# (one that took it between run.sh's check and our bind): when_ready writes our pid there.
READY_FILE_ENV = "GENMB_READY_FILE"
if METRICS and not os.environ.get(MULTIPROC_ENV):
    os.environ[MULTIPROC_ENV] = os.environ[OWN_DIR_ENV] = tempfile.mkdtemp(prefix="genmb-metrics-")


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Empty the metrics directory (a previous run's counts are not ours); with the embedded
    store, run exactly one worker, and say so at start-up."""
    if METRICS:
        for path in glob.glob(os.path.join(os.environ[MULTIPROC_ENV], "*.db")):
            os.remove(path)
    if EMBEDDED:
        server.num_workers = 1
        server.log.warning(
            "embedded in-process store (REDIS_URL=memory://): exactly 1 worker, whatever "
            "WORKERS says; nothing survives a restart. Set REDIS_URL to a Redis for more."
        )


def when_ready(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Serve GET /metrics on METRICS_BIND from a thread of the master (no worker involved);
    then, when GENMB_READY_FILE names a file (scripts/run.sh), write this master's pid in it:
    the address is ours now (deploy/listen.py)."""
    if METRICS and SETTINGS["METRICS_BIND"]:
        from config import parse_bind
        from deploy.metrics_listener import serve

        host, port = parse_bind(SETTINGS["METRICS_BIND"])
        try:
            serve(host, port)
        except OSError as exc:  # busy or not ours: say so in one line, as for a bad setting
            print(
                f"genmb: cannot start: METRICS_BIND={SETTINGS['METRICS_BIND']!r}: {exc.strerror}",
                file=sys.stderr,
                flush=True,
            )
            on_exit(server)
            sys.exit(2)
        server.log.info("metrics on http://%s/metrics", SETTINGS["METRICS_BIND"])
    ready_file = os.environ.get(READY_FILE_ENV)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's Arbiter and Worker
    """A dead worker's live gauges go (its counters stay: they were counted)."""
    if METRICS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Remove the metrics directory this start made for itself."""
    own = os.environ.get(OWN_DIR_ENV)
    if own and own == os.environ.get(MULTIPROC_ENV):
        shutil.rmtree(own, ignore_errors=True)


def nworkers_changed(server, new_value: int, old_value: int | None) -> None:  # noqa: ANN001
    """TTIN cannot add a second embedded store either."""
    if EMBEDDED and new_value != 1:
        server.num_workers = 1


worker_class = "sync"
timeout = SETTINGS["GUNICORN_TIMEOUT"]
graceful_timeout = 10
keepalive = 5
logger_class = RedactingLogger
accesslog = SETTINGS["ACCESS_LOG"]
errorlog = "-"
loglevel = SETTINGS["LOG_LEVEL"]
# Method and path only: no query string (a key pasted there would be logged, perhaps
# percent-encoded) and no headers (Authorization). The line still goes through the redactor.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
# gunicorn's control socket lives at one fixed path per user; several instances on one
# machine (make stack, the tests) would fight over it, and nothing here uses it.
control_socket_disable = True
