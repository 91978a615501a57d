"""Helpers for the deployment tests: subprocesses, Prometheus and the files under deploy/."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_BASE = "docker-compose.yml"
COMPOSE_OVERRIDES = ("docker-compose.cpu.yml", "docker-compose.scale.yml", "docker-compose.hostnet.yml")
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "sentiment.json"
API_JOB = "sentiment-api"
# Compose projects the tests create; leftovers of a killed session are removed by this prefix.
TEST_PROJECT_PREFIX = "sentiment-ci-"
# Grafana fills these in before a query reaches Prometheus; the tests do the same.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}


def run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure the assertion message carries its output."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=dict(env) if env else None, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def docker_json(docker_env: Mapping[str, str], *args: str) -> Any:
    return json.loads(run(["docker", *args], env=docker_env).stdout)


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found on PATH: {hint}")
    return path


def yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def compose_config(compose: str, files: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`docker compose config` of these files (train profile on) as JSON; no engine needed."""
    args: list[str | Path] = [compose, "--project-directory", REPO]
    for name in files:
        args += ["-f", REPO / name]
    # Only the variables a test sets: the developer's own shell must not change the outcome.
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "DOCKER_CONFIG"}}
    proc = run([*args, "--profile", "train", "config", "--format", "json"], env={**clean, **(env or {})})
    return json.loads(proc.stdout)


# ---- Grafana dashboard ---------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str
    datasource_uid: str | None

    def resolved(self) -> str:
        expr = self.expr
        for name, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(name, value)
        return expr


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows nest their panels


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _panels(dashboard["panels"]) if p.get("type") != "row"]


def dashboard_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel.get("datasource") or {}
            queries.append(PanelQuery(panel["title"], target["refId"], target["expr"], ds.get("uid")))
    return queries


# ---- metric names --------------------------------------------------------------------------

_METRIC_TOKEN = re.compile(r"\b(sentiment_[a-z0-9_]+)")


def metric_names_in(expr: str) -> set[str]:
    return set(_METRIC_TOKEN.findall(expr))


def exported_series_names() -> set[str]:
    """Every series name the service can export (app/metrics.py, app/quality/metrics.py), GPU gauges included
    (registered as on CUDA)."""
    from app.metrics import Metrics
    from app.quality.metrics import QualityMetrics

    metrics = Metrics()
    QualityMetrics(metrics.registry)
    metrics.set_model("sentiment", 1, "cuda", "bf16")
    metrics.track_gpu_memory(lambda: 0.0, lambda: 0.0)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


# ---- Prometheus ----------------------------------------------------------------------------


def retarget_scrape_config(config: dict[str, Any], api_target: str, self_target: str, rules: Path) -> dict[str, Any]:
    """deploy/'s config with the compose DNS discovery swapped for static loopback targets.

    Everything else (job names, paths, intervals, rule files) stays as shipped.
    """
    config = json.loads(json.dumps(config))
    config["rule_files"] = [str(rules)]
    for job in config["scrape_configs"]:
        for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
            del job[key]
        target = api_target if job["job_name"] == API_JOB else self_target
        job["static_configs"] = [{"targets": [target]}]
    return config


# Loopback only: never route test traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with _OPENER.open(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400/422 carry Prometheus' own error message
            body = json.load(exc)
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def ready(self) -> bool:
        try:
            with _OPENER.open(f"{self.base_url}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", {"query": expr})["result"]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in (float(s["value"][1]) for s in result) if math.isfinite(v)]


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; its last value or exception goes into the failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except (AssertionError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
