"""The Grafana dashboard and provisioning, checked without Grafana (none can run here).

Syntax of every panel query is checked by promtool (each becomes a recording rule); that each
returns data from a real scrape is checked by tests/deploy/test_compose_up.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.helpers.deploy import (
    DASHBOARD,
    DEPLOY,
    REPO,
    dashboard_panels,
    dashboard_queries,
    exported_series_names,
    metric_names_in,
    run,
)

GRAFANA = DEPLOY / "grafana"


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def provisioned_datasource() -> dict:
    (ds,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    return ds


def test_every_panel_has_queries_on_the_provisioned_datasource() -> None:
    dashboard = load_dashboard()
    uid = provisioned_datasource()["uid"]
    panels = dashboard_panels(dashboard)
    assert len(panels) >= 8
    for panel in panels:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    for query in dashboard_queries(dashboard):
        assert query.datasource_uid == uid, f"{query.panel}/{query.ref_id} uses datasource {query.datasource_uid}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_queries_use_only_exported_metrics() -> None:
    exported = exported_series_names()
    for query in dashboard_queries(load_dashboard()):
        unknown = metric_names_in(query.expr) - exported
        assert not unknown, f"{query.panel}: {unknown} is not exported by app/metrics.py"


def test_dashboard_covers_what_operators_need() -> None:
    exprs = " ".join(q.expr for q in dashboard_queries(load_dashboard()))
    for needed in (
        "sentiment_inputs_total",  # throughput
        "histogram_quantile(0.99, sum by (le) (rate(sentiment_request_duration_seconds_bucket",  # p99
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "sentiment_batch_size",
        "sentiment_padded_tokens_total",
        "sentiment_real_tokens_total",
        "sentiment_queue_depth",
        "sentiment_rejections_total",
        "sentiment_gpu_memory_allocated_bytes",
        "sentiment_gpu_memory_reserved_bytes",
    ):
        assert needed in exprs, f"no panel queries {needed}"


def test_dashboard_covers_model_quality() -> None:
    exprs = " ".join(q.expr for q in dashboard_queries(load_dashboard()))
    for needed in (
        "sentiment_predictions_total",
        "sentiment_reference_label_share",
        "sentiment_drift_psi",
        "sentiment_window_low_confidence_share",
        "sentiment_reference_low_confidence_share",
        "sentiment_prediction_confidence_bucket",
        "sentiment_input_tokens_bucket",
        "sentiment_canary_status",
        "sentiment_feedback_total",
        "sentiment_feedback_confusion_total",
        "sentiment_reference_accuracy",
        "sentiment_shadow_agreements_total",
        "sentiment_shadow_inputs_total",
        "sentiment_shadow_feedback_total",
    ):
        assert needed in exprs, f"no panel queries {needed}"


def test_panel_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries(load_dashboard())
    leftovers = [q for q in queries if re.search(r"\$\w+", q.resolved())]
    assert not leftovers, f"unresolved Grafana variables: {[q.expr for q in leftovers]}"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": q.resolved()} for i, q in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    run([promtool, "check", "rules", path])


def test_provisioning_matches_the_compose_mounts() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")}
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/sentiment.yml").read_text())["providers"]
    dashboards_dir = provider["options"]["path"]
    assert (REPO / mounts[dashboards_dir] / DASHBOARD.name).is_file()
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{dashboards_dir}/{DASHBOARD.name}"
    datasource = provisioned_datasource()
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
