"""Issue #15: `make bench --profile` puts each py-spy sample in the stage that spent it."""

from __future__ import annotations

import pytest

from bench.profile import stage_of

WORKER = "SyncWorker.handle (gunicorn/workers/sync.py:141);SyncWorker.handle_request (x:184)"
HOT = ";HotPath.__call__ (security/hot_path.py:1)"  # GET /api/me by key, before Flask
APP = f"{WORKER};Flask.__call__ (flask/app.py:1536);TrustedProxies.__call__ (security/edge.py:67)"


@pytest.mark.parametrize(
    ("leaf", "stage"),
    [
        ("", "WSGI/Flask dispatch"),
        (
            ";Flask.wsgi_app (flask/app.py:1);RequestContext.push (flask/ctx.py:1)",
            "WSGI/Flask dispatch",
        ),
        (";before_request (security/gate.py:1);check (store/gate.py:1)", "gate Python"),
        (
            ";before_request (security/gate.py:1);Lane.execute (store/client.py:1);"
            "AbstractConnection.send_command (redis/connection.py:1)",
            "redis-py send/parse",
        ),
        (";me (blueprints/account.py:1);summary (services/credits.py:1)", "view"),
        (";me (blueprints/account.py:1);iso (store/clock.py:1)", "view"),
        (";check (store/gate.py:1);iso (store/clock.py:1)", "gate Python"),
        (
            ";me (blueprints/account.py:1);JSONEncoder.encode (json/encoder.py:1)",
            "response serialization",
        ),
        (
            ";process_response (flask/app.py:1);add_rate_headers (security/rate_headers.py:1);"
            "Headers.set (werkzeug/datastructures/headers.py:1)",
            "after_request",
        ),
        (";_check_request_limit (flask_limiter/extension.py:1)", "gate Python"),
        # GET /api/me by key, answered by the hot path before Flask (security/hot_path.py).
        (HOT, "WSGI/Flask dispatch"),
        (HOT + ";run_gate (security/gate.py:1)", "gate Python"),
        (
            HOT + ";rate_header_items (security/rate_headers.py:1)",
            "after_request",
        ),
        (
            HOT + ";security_header_items (security/edge.py:1)",
            "after_request",
        ),
        (HOT + ";me_bytes (blueprints/account.py:1)", "view"),
    ],
)
def test_stage_of(leaf, stage):
    """The innermost frame that names a stage decides; Flask and gunicorn only as fallback."""
    assert stage_of(APP + leaf) == stage


def test_gunicorn_and_its_access_line():
    """The worker alone is gunicorn; its access line, called from the worker, is logging."""
    assert stage_of(WORKER) == "gunicorn: accept, parse, write, close"
    assert stage_of(f"{WORKER};Logger.access (gunicorn/glogging.py:1)") == "logging (access line)"


def test_the_profile_table_lists_each_stage_once():
    """A stage named in both tables (dispatch: Flask's, and the hot path's) is one line."""
    from bench.run import profile_table

    report = {
        "ours": {
            "stages_us": {"WSGI/Flask dispatch": 30.0},
            "server_cpu_us": 400,
            "redis_cpu_us": 60,
            "redis_command_us": 20,
        }
    }
    lines = profile_table(report).splitlines()
    assert [line.split()[0:2] for line in lines].count(["WSGI/Flask", "dispatch"]) == 1
    assert any(line.startswith("WSGI/Flask dispatch") and line.endswith("30") for line in lines)
