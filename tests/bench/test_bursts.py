"""bench/bursts.py: its checks, and the harness end to end on a tiny model (small bursts, loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.burst_client import Outcome, summarise
from bench.bursts import table, verdict

ROOT = Path(__file__).resolve().parents[2]


def _burst(rss: float, before: float = 10.0, after: float = 11.0, **summary: Any) -> dict[str, Any]:
    probe = {"p50_ms": before, "cpu_ms": before}
    return {
        "statuses": {"200": 10},
        "no_status": 0,
        "unexpected_status": 0,
        "429_without_retry_after": 0,
        "probe_before": probe,
        "probe_after_2s": {"p50_ms": after, "cpu_ms": after},
        "ratio": after / before,
        "cpu_ratio": after / before,
        "rss_mb": rss,
        "gc": {},
        **summary,
    }


def test_summary_counts_missing_answers_but_not_deliberate_hang_ups() -> None:
    outcomes = [
        Outcome(200, 0.1, reused=False),
        Outcome(429, 0.1, reused=True, retry_after=True, error_type="queue_full"),
        Outcome(429, 0.1, reused=True, retry_after=False, error_type="queue_full"),
        Outcome(None, 5.3, reused=True, error="ReadError('')"),
        Outcome(None, 0.5, reused=False, hung_up=True),
        Outcome(500, 0.1, reused=False, error_type="internal_error"),
    ]
    summary = summarise(outcomes)
    assert summary["statuses"] == {"200": 1, "429": 2, "None": 1, "hung_up": 1, "500": 1}
    assert summary["no_status"] == 1 and summary["no_status_detail"][0]["reused"] is True
    assert summary["429_without_retry_after"] == 1
    assert summary["unexpected_status"] == 1


def test_verdict_holds_each_target() -> None:
    good = [_burst(600.0), _burst(640.0)]
    assert verdict(good)["passed"]
    assert not verdict([_burst(600.0), _burst(700.0)])["checks"]["rss_last_within_10pct_of_first"]
    assert not verdict([_burst(600.0, after=16.0)])["checks"]["probe_2s_after_within_1.5x"]
    assert not verdict([_burst(600.0, no_status=1)])["checks"]["no_request_without_status"]
    result = {"run": "plain:fresh", "bursts": good, **verdict(good)}
    assert "| plain:fresh | 20 | 20 |" in table([result]) and "| pass |" in table([result])


@pytest.mark.integration
def test_the_harness_runs_every_scenario_against_a_real_server(shared_models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bursts.json"
    runs = "plain:fresh,api-key:reuse,disconnect:probe-then-burst"
    cmd = [sys.executable, "-m", "bench.bursts", "--runs", runs, "--bursts", "2", "--concurrency", "40"]
    cmd += ["--pause", "0.5", "--models-dir", str(shared_models_dir), "--out", str(out), "--serve-arg=--device=cpu"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert out.exists(), done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert [r["run"] for r in report["results"]] == runs.split(",")
    for result in report["results"]:
        checks = result["checks"]  # latency and memory depend on this machine's load: not asserted here
        assert checks["no_request_without_status"] and checks["only_200_429_503_504"], result["run"]
        assert checks["every_429_has_retry_after"] and result["exit_code"] == 0
        statuses = {k for b in result["bursts"] for k in b["statuses"]}
        assert "200" in statuses, result["run"]  # the api-key run authenticates
        assert all(sum(b["statuses"].values()) == 40 for b in result["bursts"])  # hang-ups counted, not lost
