"""The benchmark harness: workload, steady-state throughput, ratios and targets, one tiny real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench import report
from bench.loadgen import Outcome, summarise
from bench.run import _parse_runs
from bench.workload import WorkloadSpec, build_texts, request_bodies, request_texts

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = [f"snippet number {i} is {'good' if i % 2 else 'bad'}" for i in range(50)]


def test_workload_is_deterministic_and_mixes_long_texts() -> None:
    spec = WorkloadSpec(pool_size=400, long_fraction=0.25, max_join=6, seed=3)
    texts = build_texts(spec, SNIPPETS)
    assert texts == build_texts(spec, SNIPPETS)
    assert texts != build_texts(WorkloadSpec(pool_size=400, long_fraction=0.25, max_join=6, seed=4), SNIPPETS)
    joined = [t for t in texts if t not in SNIPPETS]
    assert 0.15 < len(joined) / len(texts) < 0.35
    assert max(len(t) for t in joined) > 4 * max(len(s) for s in SNIPPETS)


def test_requests_cycle_through_the_pool_and_encode_as_json() -> None:
    texts = ["a", "b", "c", "d", "e"]
    assert request_texts(texts, 2, 0) == ["a", "b"]
    assert request_texts(texts, 2, 2) == ["e", "a"]
    bodies = list(request_bodies(texts, 3, 4))
    assert [orjson.loads(b)["texts"] for b in bodies][1] == ["d", "e", "a"]
    assert all(b"\n" not in b for b in bodies)  # one body per line in the bodies file


def test_builtin_snippets_are_real_reviews() -> None:
    from bench.workload import load_snippets

    snippets = load_snippets()
    assert len(snippets) > 12_000
    assert len({s.lower() for s in snippets}) == len(snippets)


def test_throughput_is_answered_texts_over_time_to_the_last_answer() -> None:
    outcome = Outcome(latencies=[0.5, 0.5, 0.5, 0.1], done_at=[(1.0, 32), (2.0, 32), (4.0, 32)])
    outcome.error("http_500")  # a failed request's texts do not count
    result = summarise(outcome, started=0.0, last_sent=2.0, finished=4.5, requests=4, client_cpu_s=0.004)
    assert result["sentences_per_s"] == 24.0  # 96 texts / 4 s
    assert result["ok_texts"] == 96 and result["wall_s"] == 4.0
    assert result["errors"] == 1 and result["error_kinds"] == {"http_500": 1}
    assert result["p50_ms"] == 500.0 and result["mean_ms"] == 400.0
    assert result["client_cpu_ms_per_request"] == 1.0


def _runs(service: float, naive: float, peer: float, p99: float) -> dict:
    def r(x: float, p: float = 10.0) -> dict:
        return {"sentences_per_s": x, "p50_ms": p, "p95_ms": p, "p99_ms": p, "errors": 0}

    return {
        "1": {"service": {"1": r(50, p99), "64": r(service)}, "naive": {"64": r(naive)}, "peer": {"64": r(peer)}},
        "32": {"service": {"16": r(95)}},
    }


def test_ratios_and_targets() -> None:
    ceiling = {"sentences_per_s": 100.0, "single_text_ms": {"p99": 10.0}}
    runs = _runs(service=86, naive=20, peer=60, p99=12.0)
    ratios = report.ratios(runs, ceiling)
    assert ratios["service_over_ceiling"] == {"1": {"1": 0.5, "64": 0.86}, "32": {"16": 0.95}}
    assert ratios["service_over_naive"]["1"]["64"] == 4.3
    assert ratios["service_over_peer"]["1"]["64"] == 1.433
    padding = {"1": 1.2, "32": 1.0, "overall": 1.1}  # the overall figure must not hide the 1-text one
    checks = {t["target"]: t["met"] for t in report.targets(ratios, runs, ceiling, padding)}
    assert checks["32 texts @ c=16: service / ceiling"] is True  # 0.95 >= 0.95
    assert checks["1 text @ c=64: service / ceiling"] is True  # 0.86 >= 0.85
    assert checks["1 text @ c=64: service / peer"] is False  # 1.433 < 2
    assert checks["padded / real tokens (service, 1-text requests)"] is False  # 1.2 > 1.15
    assert checks["padded / real tokens (service, 32-text requests)"] is True
    assert checks["1 text @ c=1: service p99 / ceiling single-text p99"] is True  # 1.2 <= 1.3


def test_runs_override_parses() -> None:
    assert _parse_runs("1:1x24,64x192;32:16x24") == {1: {1: 24, 64: 192}, 32: {16: 24}}


@pytest.mark.integration
def test_tiny_end_to_end_run(publish_tiny, tmp_path: Path) -> None:
    """Every contender in its own process against a tiny model; the last line is the JSON path."""
    version_dir = publish_tiny()
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bench.run", "--mode", "quick", "--models-dir", str(version_dir.parents[1])]
    cmd += ["--runs", "1:1x6,4x8;32:2x2", "--pool-size", "48", "--threads", "1", "--out-dir", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path == out / "results.json"
    results = json.loads(path.read_text())
    assert results["meta"]["model"]["origin"] == "published"
    for size, concs in (("1", ("1", "4")), ("32", ("2",))):
        for conc in concs:  # the ceiling repeats its pass at every load point
            assert results["runs"][size]["ceiling"][conc]["sentences_per_s"] > 0
        for contender in report.CONTENDERS:
            if contender == "infinity" and "infinity" in results["meta"]["notes"]:
                assert "not installed" in results["meta"]["notes"]["infinity"]  # its own venv; CI has none
                continue
            for conc in concs:
                run = results["runs"][size][contender][conc]
                assert run["errors"] == 0, (contender, size, conc, run)
                assert run["sentences_per_s"] > 0 and run["p50_ms"] <= run["p99_ms"]
    assert results["ceiling"]["dtype"] == results["meta"]["dtype"]
    assert results["padding"]["overall"] >= 1.0 and results["padding"]["1"] >= 1.0
    assert results["runs"]["1"]["service"]["4"]["padding_ratio"] >= 1.0  # read around that run alone
    assert {t["target"] for t in results["targets"]} >= {"padded / real tokens (service, 32-text requests)"}
    expected = {"service_over_ceiling", "service_over_naive", "service_over_peer", "service_over_infinity"}
    assert set(results["ratios"]) == expected
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| service | 4 |" in (out / "results.md").read_text()
