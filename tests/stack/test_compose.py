"""docker-compose.yml, docker-compose.sentinel.yml, the Dockerfile and .env.example, checked by
reading them: this project's machines have no Docker engine, so the compose stack is never run
by the tests. What they must say is what deploy/topology.py says, which `make stack` runs and
tests/stack/test_stack.py and tests/stack/test_stack_sentinel.py exercise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import topology
from deploy.processes import ROOT

COMPOSE_PATH = ROOT / "docker-compose.yml"
SENTINEL_OVERRIDE_PATH = ROOT / "docker-compose.sentinel.yml"
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE_PATH.read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, please"
    return {k: str(v) for k, v in environment.items()}


def _secret_ref(text: str, name: str) -> str:
    """The one ${NAME...} interpolation in text (a reference, never a value)."""
    refs = [m.group(0) for m in INTERPOLATION.finditer(text) if m.group(1) == name]
    assert refs, f"{name} is not taken from the environment file in {text!r}"
    return refs[0]


def env_example() -> dict[str, str]:
    """.env.example as NAME -> value."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


# ---- docker-compose.yml against deploy/topology.py ------------------------------------------


def test_compose_names_the_same_services(compose: dict[str, Any]) -> None:
    """redis, app1, app2, nginx: no more, no fewer."""
    assert set(compose["services"]) == set(topology.SERVICES)


def test_redis_service_has_the_shared_settings_and_is_private(compose: dict[str, Any]) -> None:
    """AOF everysec, noeviction, no RDB; password from .env; named volume; health check."""
    redis = compose["services"][topology.REDIS_SERVICE]
    command = [str(part) for part in redis["command"]]
    password = _secret_ref(command[2], "REDIS_PASSWORD")
    assert command == ["redis-server", "--requirepass", password, *topology.redis_command_flags()]
    assert "ports" not in redis, "Redis must not be published on the host"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"], "data on a named volume"
    assert "/" not in volume
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    _secret_ref(_env(redis)["REDISCLI_AUTH"], "REDIS_PASSWORD")


def test_app_instances_run_gunicorn_behind_exactly_one_proxy(compose: dict[str, Any]) -> None:
    """Each instance: the image, the shared settings, REDIS_URL with the password, workers
    from the environment, reachable only inside the network, healthy only when /healthz is."""
    for name in topology.APP_INSTANCES:
        app = compose["services"][name]
        env = _env(app)
        for setting, value in topology.APP_SETTINGS.items():
            assert env[setting] == value, (name, setting)
        assert env["GENMB_ENV"] == "production"
        password = _secret_ref(env["REDIS_URL"], "REDIS_PASSWORD")
        assert env["REDIS_URL"] == topology.redis_url(
            password, topology.REDIS_SERVICE, topology.REDIS_PORT
        )
        _secret_ref(env["SECRET_KEY"], "SECRET_KEY")
        assert INTERPOLATION.fullmatch(env["WORKERS"]).group(1) == "WORKERS"  # type: ignore[union-attr]
        assert env["BIND"] == f"0.0.0.0:{topology.APP_PORT}"
        assert app["build"] == "." and "command" not in app  # the Dockerfile's CMD
        assert "ports" not in app and [str(p) for p in app["expose"]] == [str(topology.APP_PORT)]
        assert app["depends_on"][topology.REDIS_SERVICE]["condition"] == "service_healthy"
        assert "/healthz" in " ".join(app["healthcheck"]["test"])
    first, *others = (compose["services"][n] for n in topology.APP_INSTANCES)
    assert all(other == first for other in others), "the instances must be identical"


def test_nginx_renders_the_shared_template_over_every_instance(compose: dict[str, Any]) -> None:
    """The one template, the same upstream lines as make stack, the only published port."""
    nginx = compose["services"][topology.PROXY_SERVICE]
    env = _env(nginx)
    assert env["NGINX_ENVSUBST_FILTER"] == topology.TEMPLATE_FILTER
    assert env["GENMB_UPSTREAM_SERVERS"] == topology.upstream_servers(
        f"{name}:{topology.APP_PORT}" for name in topology.APP_INSTANCES
    )
    source, target, *_ = nginx["volumes"][0].split(":")
    assert (ROOT / source).resolve() == topology.NGINX_TEMPLATE
    assert target.startswith("/etc/nginx/templates/") and target.endswith(".conf.template")

    published = [str(p) for p in nginx["ports"]]
    assert len(published) == 1 and published[0].endswith(f":{env['GENMB_LISTEN']}")
    exposed = [n for n, s in compose["services"].items() if "ports" in s]
    assert exposed == [topology.PROXY_SERVICE]

    values = {name: env[name] for name in topology.TEMPLATE_VARIABLES}
    rendered = topology.render_nginx(values)
    assert "${" not in rendered
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in rendered
    assert "server app1:8000 max_fails=1" in rendered and "server app2:8000" in rendered
    directives = [
        line.strip()
        for line in rendered.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    # A POST already sent is never retried on another instance (no non_idempotent), nor is
    # anything on the app's 503 (Redis is down for every instance).
    assert [d for d in directives if d.startswith("proxy_next_upstream ")] == [
        "proxy_next_upstream error timeout;"
    ]


def test_template_uses_exactly_the_declared_variables() -> None:
    """envsubst would leave an undeclared ${X} in place; nginx would then refuse to start."""
    names = set(INTERPOLATION.findall(topology.NGINX_TEMPLATE.read_text()))
    assert names == set(topology.TEMPLATE_VARIABLES)
    with pytest.raises(ValueError, match="missing"):
        topology.render_nginx({"GENMB_LISTEN": "8080"})


# ---- docker-compose.sentinel.yml against deploy/topology.py --------------------------------


@pytest.fixture(scope="module")
def sentinel_override() -> dict[str, Any]:
    """docker-compose.sentinel.yml, parsed."""
    return yaml.safe_load(SENTINEL_OVERRIDE_PATH.read_text())


def _script(service: dict[str, Any]) -> str:
    """The `sh -c` script of a service's command, as the shell sees it ($$ is compose's $)."""
    command = [str(part) for part in service["command"]]
    assert command[:2] == ["sh", "-c"], command
    return command[2].replace("$$", "$")


def test_sentinel_override_adds_the_sentinel_topology(
    compose: dict[str, Any],
    sentinel_override: dict[str, Any],
) -> None:
    """With the override: the data nodes, sentinels and settings of topology.py, passwords
    from .env only, nothing published, every configuration file in a named volume."""
    services = sentinel_override["services"]
    assert set(compose["services"]) | set(services) == set(topology.services("sentinel"))
    assert not any("ports" in service for service in services.values())
    flags = ["sh", *topology.redis_command_flags()]
    for node in topology.REDIS_NODES:
        script = _script(services[node])
        assert [str(part) for part in services[node]["command"]][3:] == flags, node
        assert '"requirepass $REDIS_PASSWORD" "masterauth $REDIS_PASSWORD"' in script
        assert (
            f'[ "$NODE_NAME" = {topology.REDIS_NODES[0]} ] || echo '
            f'"replicaof {topology.REDIS_NODES[0]} {topology.REDIS_PORT}"' in script
        )
        env = {**_env(compose["services"].get(node, {})), **_env(services[node])}
        assert env["NODE_NAME"] == node
        _secret_ref(env["REDIS_PASSWORD"], "REDIS_PASSWORD")
        _secret_ref(env["REDISCLI_AUTH"], "REDIS_PASSWORD")
    for node in topology.REDIS_NODES[1:]:
        volume, _, target = services[node]["volumes"][0].partition(":")
        assert target == "/data" and volume in sentinel_override["volumes"], node
    primary = (topology.REDIS_NODES[0], topology.REDIS_PORT)
    for name in topology.SENTINELS:
        sentinel = services[name]
        script = _script(sentinel)
        for line in (
            f"port {topology.SENTINEL_PORT}",
            *topology.sentinel_config_lines(primary, "$REDIS_PASSWORD"),
        ):
            assert f'"{line}"' in script, (name, line)
        assert "--sentinel" in script
        volume, _, target = sentinel["volumes"][0].partition(":")
        assert target == "/data" and volume in sentinel_override["volumes"], name
        _secret_ref(_env(sentinel)["REDIS_PASSWORD"], "REDIS_PASSWORD")
    sentinels = [(name, topology.SENTINEL_PORT) for name in topology.SENTINELS]
    for name in topology.APP_INSTANCES:
        app = services[name]
        env = _env(app)
        password = _secret_ref(env["REDIS_URL"], "REDIS_PASSWORD")
        assert env["REDIS_URL"] == topology.sentinel_url(password, sentinels)
        _secret_ref(env["REDIS_SENTINEL_PASSWORD"], "REDIS_PASSWORD")
        assert set(app["depends_on"]) == set(topology.SENTINELS)


# ---- no secret in the repository ------------------------------------------------------------


def test_every_compose_variable_is_documented_and_secrets_are_blank() -> None:
    """Each ${VAR} of the compose file is in .env.example; secrets have no value there."""
    used = set(INTERPOLATION.findall(COMPOSE_PATH.read_text()))
    documented = env_example()
    assert used <= set(documented), used - set(documented)
    for secret in topology.SECRETS:
        assert secret in used, secret
        assert documented[secret] == "", f"{secret} must be blank in .env.example"
    text = COMPOSE_PATH.read_text()
    for secret in topology.SECRETS:  # only references, never a literal value
        assert not re.search(rf"^\s*{secret}\s*[:=]\s*[^$\s]", text, re.M), secret


def test_env_file_is_ignored_by_git_and_by_docker() -> None:
    """.env can never be committed or baked into an image."""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be in .gitignore"
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    assert tracked == ""
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "var", ".git"):
        assert entry in dockerignore, entry


# ---- the Dockerfile -------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_builds_a_small_non_root_image_running_gunicorn() -> None:
    """python:3.11-slim, pip without cache, a non-root USER, the gunicorn CMD, BIND 0.0.0.0."""
    steps = dockerfile()
    assert all(args.split()[0] == "python:3.11-slim" for word, args in steps if word == "FROM")
    assert any(
        word == "RUN" and "pip install --no-cache-dir -r" in args and "requirements.txt" in args
        for word, args in steps
    )
    final = _final_stage()
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    words = [word for word, _ in final]
    assert words.index("USER") < words.index("CMD") and words.count("CMD") == 1
    cmd = json.loads(dict(final)["CMD"])
    assert cmd == ["gunicorn", "-c", topology.GUNICORN_CONF, topology.WSGI_APP]
    env_text = " ".join(args for word, args in final if word == "ENV")
    assert f"BIND=0.0.0.0:{topology.APP_PORT}" in env_text
    assert dict(final)["EXPOSE"] == str(topology.APP_PORT)
    for word, args in steps:  # no secret is baked into a layer
        if word in ("ENV", "ARG", "LABEL"):
            for secret in (*topology.SECRETS, "REDIS_URL", "PASSWORD", "TOKEN"):
                assert secret not in args.upper(), (word, args)


def test_the_files_the_dockerfile_copies_are_enough_to_run_the_app(tmp_path: Path) -> None:
    """Lay out /app as the final stage's COPY lines do, then build the app and load the
    gunicorn config from there alone: a module missing from the image fails here."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    for word, args in _final_stage():
        if word != "COPY" or args.startswith("--from"):
            continue
        *sources, dest = args.split()
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file"
            target = app_dir / dest
            if path.is_dir():
                shutil.copytree(
                    path, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
                )
                continue
            if dest.endswith("/"):  # COPY a b dir/: into the directory
                target.mkdir(parents=True, exist_ok=True)
                target = target / path.name
            shutil.copy2(path, target)
    script = (
        "import runpy, sys\n"
        "assert sys.path[0] == ''\n"
        "from app import create_app\n"
        "app = create_app({'REDIS_URL': 'memory://', 'TESTING': True})\n"
        "assert app.test_client().get('/login').status_code == 200\n"
        "conf = runpy.run_path('deploy/gunicorn.conf.py')\n"
        "assert conf['bind'] == '0.0.0.0:8000', conf['bind']\n"
        "import blueprints, store, schemas, security, services, mcp_server\n"
        "for m in (blueprints, store, schemas, security, services, mcp_server):\n"
        "    assert m.__file__.startswith(sys.argv[1]), m.__file__\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(app_dir)],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "BIND": "0.0.0.0:8000",
            "GENMB_ENV": "development",
            "REDIS_URL": "memory://",
        },  # the config file checks every setting as it loads
    )
    assert result.returncode == 0, result.stderr[-3000:]
