"""Prometheus for `make stack STACK_PROMETHEUS=1`: the system's server (Debian's package
`prometheus`), scraping every app instance's METRICS_BIND listener, all under var/stack/."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deploy.processes import LOOPBACK, Process, http_ok, program

SCRAPE_INTERVAL = "5s"  # short: the numbers should move while an operator watches


def config_text(metrics_ports: Mapping[str, int]) -> str:
    """prometheus.yml: one job, one target per app instance, labelled with its name."""
    targets = "\n".join(
        f"      - targets: ['{LOOPBACK}:{port}']\n        labels: {{instance: {name}}}"
        for name, port in metrics_ports.items()
    )
    return (
        "# Written by deploy/prometheus.py for make stack STACK_PROMETHEUS=1.\n"
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        "  - job_name: genmb\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"{targets}\n"
    )


def write_config(directory: Path, metrics_ports: Mapping[str, int]) -> Path:
    """Write var/stack/prometheus.yml; returns its path."""
    path = directory / "prometheus.yml"
    path.write_text(config_text(metrics_ports))
    return path


def part(
    directory: Path, port: int, metrics_ports: Mapping[str, int], env: Mapping[str, str]
) -> Process:
    """The Prometheus process: its data in var/stack/prometheus/, its UI on the loopback."""
    argv = [
        program("prometheus"),
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'prometheus'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--storage.tsdb.retention.time=7d",
    ]
    ready = f"http://{LOOPBACK}:{port}/-/ready"
    return Process(
        "prometheus", argv, dict(env), directory / "prometheus.log", lambda: http_ok(ready)
    )
