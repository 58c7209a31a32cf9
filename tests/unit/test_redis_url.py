"""REDIS_URL forms (README "Configuration"; docs/deploy.md): parsed once, bad ones refused at
start-up in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config import limits_storage, load_settings
from deploy.processes import ROOT, free_port
from store.redis_url import RedisUrlError, parse


def test_sentinel_url_with_password_hosts_service_and_db():
    """Every part of a redis+sentinel:// URL lands where redis-py's Sentinel wants it."""
    target = parse("redis+sentinel://:s%40cret@10.0.0.1:26380,[::1]:26381,sentinel3/genmb/2")
    assert target.mode == "sentinel"
    where = target.sentinel
    assert where.sentinels == (("10.0.0.1", 26380), ("::1", 26381), ("sentinel3", 26379))
    assert (where.service_name, where.db, where.username, where.password) == (
        "genmb",
        2,
        None,
        "s@cret",
    )


def test_sentinel_url_user_and_password_and_password_shorthand():
    """user:password@ and the bare password@ shorthand."""
    assert parse("redis+sentinel://app:pw@h:1/svc").sentinel.username == "app"
    shorthand = parse("redis+sentinel://pw@h:1/svc").sentinel
    assert (shorthand.username, shorthand.password, shorthand.db) == (None, "pw", 0)


def test_cluster_url_startup_nodes_and_login():
    """redis+cluster:// names startup nodes (default port 6379) and the nodes' login."""
    target = parse("redis+cluster://user:pw@n1:7000,n2,[::1]:7002")
    assert target.mode == "cluster"
    assert target.cluster.nodes == (("n1", 7000), ("n2", 6379), ("::1", 7002))
    assert (target.cluster.username, target.cluster.password) == ("user", "pw")


@pytest.mark.parametrize(
    "url,message",
    [
        ("redis+sentinel://h:1/", "names no service"),
        ("redis+sentinel:///genmb", "names no host"),
        ("redis+sentinel://h:99999/genmb", "port out of range"),
        ("redis+sentinel://h:1/genmb/x", "database must be a number"),
        ("redis+sentinel://h:1/genmb/0/extra", "path must be"),
        ("redis+sentinel://h:1/gen mb", "path must be"),
        ("redis+sentinel://h:1/genmb?ssl=1", "query strings"),
        ("redis+sentinel://h:x/genmb", "malformed host"),
        ("redis+cluster://h:1/0", "takes no path"),
        ("redis+sentnel://h/x", "unsupported scheme"),
        ("http://h:1", "unsupported scheme"),
    ],
)
def test_bad_urls_name_the_problem(url, message):
    """Each malformed URL is refused with a message that says what is wrong."""
    with pytest.raises(RedisUrlError, match=message):
        parse(url)


def test_errors_never_echo_the_password():
    """A malformed URL's message names the problem, never the password in it."""
    with pytest.raises(RedisUrlError) as refused:
        parse("redis+sentinel://user:hunter2-secret@h:1/genmb/x")
    assert "hunter2" not in str(refused.value)


def test_flask_limiter_gets_the_primary_only_and_the_sentinels_own_password():
    """The per-user limits' storage: sentinels named in the URI, the data password and db as
    options, replicas never read, and the sentinels get their own password (or none)."""
    uri, options = limits_storage(parse("redis+sentinel://:data@h1:1,h2:2/svc/3"), 0.5, "sent")
    assert uri == "redis+sentinel://h1:1,h2:2/svc"
    assert options["use_replicas"] is False
    assert (options["password"], options["db"]) == ("data", 3)
    assert options["sentinel_kwargs"]["password"] == "sent"
    _, no_own = limits_storage(parse("redis+sentinel://:data@h1:1/svc"), 0.5, "")
    assert no_own["sentinel_kwargs"]["password"] is None


def test_settings_refuse_a_bad_url_and_bad_revoke_settings():
    """load_settings turns each into one RuntimeError line."""
    base = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "x"}
    for env, message in [
        ({"REDIS_URL": "redis+sentinel://h:1/"}, "names no service"),
        ({"REVOKE_MIN_REPLICAS": "-1"}, "REVOKE_MIN_REPLICAS"),
        ({"REVOKE_MIN_REPLICAS": "one"}, "REVOKE_MIN_REPLICAS"),
        ({"REVOKE_WAIT_MS": "0"}, "REVOKE_WAIT_MS"),
    ]:
        with pytest.raises(RuntimeError, match=message):
            load_settings(env={**base, **env})
    assert load_settings(env={**base, "REVOKE_MIN_REPLICAS": "2"})["REVOKE_MIN_REPLICAS"] == 2
    assert load_settings(env=base)["REVOKE_MIN_REPLICAS"] is None


def test_gunicorn_refuses_a_bad_url_in_one_line_before_forking():
    """gunicorn with a malformed REDIS_URL exits non-zero, saying why in one line; no
    traceback, no worker started."""
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis+sentinel://127.0.0.1:1/",
        "SECRET_KEY": "x",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{free_port()}",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    ours = [line for line in output.splitlines() if line.startswith("genmb:")]
    assert ours == [
        "genmb: cannot start: REDIS_URL (sentinel) names no service: "
        "redis+sentinel://host:port/<service_name>"
    ]
    assert "Traceback" not in output and "Booting worker" not in output
