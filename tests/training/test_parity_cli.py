"""The publish hook and `sentiment-models parity` (a training plug-in of the store CLI), on a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.hardware import host_fingerprint
from store.cli import main as models_main
from store.manifest import read_manifest
from store.model_store import ModelStore
from store.parity_records import PACKING_TABLE, read_records, sidecar_path
from store.servable import version_problems
from tests.helpers.data import labelled_rows, tiny_train_args, write_rows


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
    assert version_problems(trained, "sentiment", 1) == []  # recorded before the commit point
    recorded = read_manifest(trained)["precision_parity"]
    assert set(recorded) == {"bf16", "int8"}
    for entry in recorded.values():
        assert entry["host"] == host_fingerprint("cpu")
        assert entry["examples"] == read_manifest(trained)["metrics"]["dev"]["examples"]
    packing = read_manifest(trained)["packing_parity"]  # packed against padded, per precision
    assert set(packing) == {"fp32", "bf16", "int8"}
    assert packing["fp32"]["agreement"] == 1.0 and packing["fp32"]["max_prob_diff"] < 1e-4


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
    assert version_problems(trained, "sentiment", 1) == []
    sidecar = json.loads(written.read_text())
    assert sidecar["data"]["split"] == "dev" and sidecar["host"]["fingerprint"] == fingerprint
    records = read_records(store, "sentiment", 1, read_manifest(trained), fingerprint)
    assert records.origins == {"bf16": "manifest", "int8": str(written)}
    packing = read_records(store, "sentiment", 1, read_manifest(trained), fingerprint, PACKING_TABLE)
    assert packing.origins == {"fp32": str(written), "bf16": "manifest", "int8": str(written)}
    assert "int8 packed" in out and "fp32 packed" in out


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
