"""bench/precision.py end to end on a tiny model: every variant measured, `auto` resolved and compared."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.precision import main
from tests.helpers.data import labelled_rows, write_rows


def test_precision_bench_reports_every_variant_and_the_auto_ratio(
    publish_tiny: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from inference.hardware import parse_cpuinfo
    from tests.helpers.cpus import EPYC_GENOA

    monkeypatch.setattr("inference.selection.cpu_features", lambda: parse_cpuinfo(EPYC_GENOA, "x86_64"))
    parity = {"agreement": 1.0, "accuracy_delta": 0.0, "max_prob_diff": 0.0}
    version = publish_tiny(precision_parity={"bf16": parity})
    dev = write_rows(tmp_path / "dev.csv", labelled_rows(per_class=8))
    out = tmp_path / "precision.json"
    argv = ["--models-dir", str(version.parent.parent), "--dev-data", str(dev), "--rounds", "1", "--singles", "3"]
    assert main([*argv, "--threads", "1", "--out", str(out)]) == 0

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out)
    result = json.loads(out.read_text())
    assert list(result["variants"]) == ["fp32", "bf16", "bf16-autocast", "int8"]
    for entry in result["variants"].values():
        assert entry["sentences_per_s"] > 0 and entry["p50_ms"] > 0 and entry["examples"] == 16
    assert result["variants"]["fp32"]["agreement"] == 1.0
    assert result["auto"]["dtype"] == "bf16" and result["auto_vs_fp32"]["dtype"] == "bf16"
    ratio = result["auto_vs_fp32"]["throughput_ratio"]
    expected = result["variants"]["bf16"]["sentences_per_s"] / result["variants"]["fp32"]["sentences_per_s"]
    assert ratio == pytest.approx(expected)
    assert any(line.startswith("| int8 |") for line in printed)
