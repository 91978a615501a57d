"""promtool on deploy/prometheus: config, rules, the rules' unit tests, and metric names."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers.deploy import API_JOB, DEPLOY, exported_series_names, metric_names_in, run

PROMETHEUS = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "SentimentApiDown",
    "SentimentHighErrorRate",
    "SentimentQueueSaturated",
    "SentimentHighP99Latency",
}


def test_promtool_check_config(promtool: str) -> None:
    out = run([promtool, "check", "config", PROMETHEUS / "prometheus.yml"]).stdout
    assert "1 rule files found" in out


def test_promtool_check_rules(promtool: str) -> None:
    run([promtool, "check", "rules", PROMETHEUS / "alerts.yml"])


def test_alert_rules_unit_tests(promtool: str) -> None:
    # alerts.test.yml states, per scenario, exactly which alerts fire with which labels and text.
    run([promtool, "test", "rules", PROMETHEUS / "alerts.test.yml"])


def test_required_alerts_exist_and_use_exported_metrics() -> None:
    rules = [r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    exported = exported_series_names()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        unknown = metric_names_in(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} uses metrics the service does not export: {unknown}"
        if "sentiment_" not in rule["expr"]:
            assert f'job="{API_JOB}"' in rule["expr"], rule["alert"]


def test_scrape_job_matches_the_compose_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == API_JOB]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    assert sd["names"] == ["api"] and "api" in compose["services"]
    assert sd["port"] == 8000, "the api's default SENTIMENT_PORT"


def test_prometheus_rule_file_is_mounted_next_to_the_config() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    for rule_file in config["rule_files"]:
        assert f"./deploy/prometheus/{rule_file}:/etc/prometheus/{Path(rule_file).name}:ro" in mounts
