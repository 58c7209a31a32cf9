"""Issue #17, item 4: `make stack STACK_PROMETHEUS=1` runs the system's Prometheus, scraping
both app instances on their METRICS_BIND listeners; requests sent through nginx show up in it,
summed over the instances, and every metric the dashboard queries is there."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from deploy.processes import ROOT
from deploy.stack import Stack

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "deploy" / "grafana" / "genmb.json"
WAIT = 40.0  # seconds: a few scrape intervals (5 s), bounded


def _query(stack: Stack, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{stack.prometheus_port}/api/v1/query"
    body = requests.get(url, params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_both_instances(tmp_path):
    """Both targets up; 6 anonymous requests through nginx appear as 6 missing_credentials
    (across the two instances); the dashboard's metrics all exist in Prometheus."""
    with Stack(tmp_path / "var", with_prometheus=True) as stack:
        for _ in range(6):
            assert requests.get(f"{stack.url}/api/me", timeout=10).status_code == 401
        expr = 'sum(genmb_requests_total{outcome="missing_credentials"})'
        deadline = time.monotonic() + WAIT
        while True:
            targets = requests.get(
                f"http://127.0.0.1:{stack.prometheus_port}/api/v1/targets", timeout=10
            ).json()["data"]["activeTargets"]
            up = sorted(t["labels"]["instance"] for t in targets if t["health"] == "up")
            result = _query(stack, expr)
            if up == ["app1", "app2"] and result and float(result[0]["value"][1]) == 6:
                break
            assert time.monotonic() < deadline, (up, result)
            time.sleep(0.5)
        exprs = [
            t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]
        ]
        for name in {n for e in exprs for n in re.findall(r"\bgenmb_[a-z_]+", e)}:
            assert _query(stack, f"count({name})"), name
