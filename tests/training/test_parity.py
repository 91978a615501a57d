"""Precision parity: the measurement, the publish hook and `sentiment-models parity` (tiny models)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.model.hardware import host_fingerprint
from tests.conftest import build_tiny_bert
from tests.training.conftest import labelled_rows, tiny_train_args, write_rows
from training import parity
from training.models_cli import main as models_main
from training.parity_store import read_records, sidecar_path
from training.store import ModelStore, read_manifest, verify_directory


def test_compare_counts_agreement_accuracy_and_probability_drift() -> None:
    reference = np.array([[2.0, 0.0], [0.0, 2.0], [0.1, 0.0], [0.0, 3.0]])
    candidate = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 0.1], [0.0, 3.0]])  # flips the near-tie only
    labels = np.array([0, 1, 1, 1])
    entry = parity.compare(reference, candidate, labels, temperature=1.0)
    assert entry["agreement"] == 0.75 and entry["examples"] == 4
    assert entry["fp32_accuracy"] == 0.75 and entry["accuracy"] == 1.0 and entry["accuracy_delta"] == 0.25
    flipped = 1 / (1 + np.exp(-0.1))  # the near-tie moved from p=0.525 to 0.475 for each class
    assert entry["max_prob_diff"] == pytest.approx(2 * flipped - 1, abs=1e-6)
    hotter = parity.compare(reference, candidate, labels, temperature=2.0)
    assert hotter["max_prob_diff"] < entry["max_prob_diff"]  # calibrated, as the service answers


def test_subsample_is_bounded_and_repeatable() -> None:
    assert parity.subsample(10, limit=20).tolist() == list(range(10))
    picked = parity.subsample(1000, limit=100)
    assert len(picked) == 100 == len(set(picked.tolist())) and (picked == parity.subsample(1000, limit=100)).all()


def test_measure_runs_each_precision_on_a_copy_and_leaves_fp32_alone(
    tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    model = build_tiny_bert(["negative", "positive"], seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = labelled_rows(per_class=10)
    texts, labels = [r["text"] for r in rows], [int(r["label"] == "positive") for r in rows]
    with caplog.at_level(logging.WARNING, logger="training.parity"):
        results = parity.measure(model, tokenizer, texts, labels, 1.0, "cpu", ["bf16", "int8", "fp16"])
    assert set(results) == {"bf16", "int8"}  # fp16 cannot run on a CPU: logged, not recorded
    assert "fp16 cannot run on cpu" in caplog.text
    for entry in results.values():
        assert set(entry) >= {"agreement", "accuracy_delta", "max_prob_diff", "examples", "device"}
        assert 0.0 <= entry["agreement"] <= 1.0 and entry["examples"] == len(texts) and entry["device"] == "cpu"
    after = model.state_dict()
    assert all(after[k].dtype == torch.float32 and torch.equal(after[k], v) for k, v in before.items())


# ---- the publish hook and the CLI share one tiny training run -----------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_base_model: Path) -> Path:
    """A tiny model trained for a few steps on a keyword CSV; returns its version directory."""
    from training.cli import main as train_main

    root = tmp_path_factory.mktemp("parity-train")
    data = write_rows(root / "data.csv", labelled_rows(per_class=40))
    argv = tiny_train_args(data, tiny_base_model, root, "--max-steps", "20", "--eval-steps", "20")
    assert train_main(argv) == 0
    return root / "models" / "sentiment" / "1"


def test_publishing_records_parity_in_the_checksummed_manifest(trained: Path) -> None:
    assert verify_directory(trained, "sentiment", 1) == []  # recorded before the commit point
    recorded = read_manifest(trained)["precision_parity"]
    assert set(recorded) == {"bf16", "int8"}
    for entry in recorded.values():
        assert entry["host"] == host_fingerprint("cpu")
        assert entry["examples"] == read_manifest(trained)["metrics"]["dev"]["examples"]


def _parity_cli(capsys: pytest.CaptureFixture[str], models: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = models_main(["--models-dir", str(models), "parity", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_parity_command_writes_a_host_sidecar_and_leaves_the_version_untouched(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = trained.parent.parent
    code, out, err = _parity_cli(capsys, models, "--precisions", "int8")  # default data: as trained
    assert code == 0, err
    store = ModelStore(models)
    fingerprint = host_fingerprint("cpu")
    written = sidecar_path(store, "sentiment", 1, fingerprint)
    assert out.strip().splitlines()[-1] == str(written)
    assert "int8" in out and "agreement" in out
    assert verify_directory(trained, "sentiment", 1) == []
    sidecar = json.loads(written.read_text())
    assert sidecar["data"]["split"] == "dev" and sidecar["host"]["fingerprint"] == fingerprint
    records = read_records(store, "sentiment", 1, read_manifest(trained), fingerprint)
    assert records.origins == {"bf16": "manifest", "int8": str(written)}


def test_parity_command_takes_a_dev_file_and_refuses_foreign_labels(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = trained.parent.parent
    sidecars = models / "sentiment" / ".parity"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in sidecars.glob("*")) if sidecars.is_dir() else []
    dev = write_rows(tmp_path / "dev.csv", labelled_rows(per_class=5))
    code, out, err = _parity_cli(capsys, models, "--dev-data", str(dev), "--no-write", "--precisions", "bf16")
    assert code == 0, err
    assert "bf16" in out and str(dev.resolve()) in out
    assert (sorted((p.name, p.stat().st_mtime_ns) for p in sidecars.glob("*")) if sidecars.is_dir() else []) == before

    foreign = write_rows(tmp_path / "foreign.csv", labelled_rows(("negative", "neutral"), per_class=3))
    code, _, err = _parity_cli(capsys, models, "--dev-data", str(foreign), "--no-write")
    assert code == 1 and "['neutral'] are not labels of this model" in err

    missing = tmp_path / "gone.csv"
    code, _, err = _parity_cli(capsys, models, "--dev-data", str(missing), "--no-write")
    assert code == 1 and "gone.csv: no such file" in err


def test_parity_command_rejects_unknown_precisions(trained: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        models_main(["--models-dir", str(trained.parent.parent), "parity", "--precisions", "fp32"])
    assert exited.value.code == 2
