"""The GPU script's logic, exercised on the CPU with a tiny model (no GPU is needed here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.gpu import WHEELS, wheel_command

ROOT = Path(__file__).resolve().parents[2]


def test_wheelhouse_command_pins_this_venvs_versions_for_the_device_python(tmp_path: Path) -> None:
    import importlib.metadata as md

    cmd = wheel_command(tmp_path)
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--only-binary=:all:" in cmd and "--no-deps" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    assert f"fastapi=={md.version('fastapi')}" in cmd and f"litserve=={md.version('litserve')}" in cmd
    assert len([c for c in cmd if "==" in c]) == len(WHEELS)


def test_gpu_targets_are_the_issue_goals() -> None:
    runs = {"32": {"service": {"64": {"sentences_per_s": 25_000.0}, "256": {"sentences_per_s": 18_000.0}}}}
    table = {"service_over_ceiling": {"32": {"64": 0.85, "256": 0.7}}}
    met = {t["target"]: t["met"] for t in report.targets(table, runs, None, {}, device="cuda")}
    assert met == {
        "32 texts @ c=64: service sentences/s": True,
        "32 texts @ c=64: service / ceiling": True,
        "32 texts @ c=256: service sentences/s": False,
        "32 texts @ c=256: service / ceiling": False,
    }


@pytest.mark.integration
def test_gpu_run_logic_on_cpu_with_a_tiny_model(tmp_path: Path) -> None:
    bundle, out = tmp_path / "bundle", tmp_path / "run"
    prep = [sys.executable, "-m", "bench.gpu", "prepare", "--bundle", str(bundle), "--pool-size", "64"]
    done = subprocess.run([*prep, "--no-download"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (bundle / "tokenizer" / "tokenizer.json").is_file()
    assert len(json.loads((bundle / "texts.json").read_text())["texts"]) == 64

    cmd = [sys.executable, "-m", "bench.gpu", "run", "--bundle", str(bundle), "--out-dir", str(out)]
    cmd += ["--device", "cpu", "--stand-in", "tiny", "--dtype", "fp32", "--threads", "1"]
    cmd += ["--runs", "32:2x4", "--contenders", "ceiling,service"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(Path(done.stdout.strip().splitlines()[-1]).read_text())
    assert results["meta"]["mode"] == "gpu" and results["meta"]["workload"]["texts"] == 64
    assert "--max-batch-size=512" in results["meta"]["commands"]["service"]
    assert results["runs"]["32"]["service"]["2"]["errors"] == 0
    assert results["ceiling"]["by_batching"].keys() >= {"batch 512", "tokens <= 65536"}
