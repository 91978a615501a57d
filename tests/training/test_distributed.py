"""The training pipeline runs distributed, as the docs claim: `torchrun` on the CPU (gloo), rank 0 publishes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from store.manifest import read_manifest
from store.model_store import ModelStore
from store.servable import version_problems
from tests.helpers.data import labelled_rows, tiny_train_args
from tests.helpers.net import free_port
from training.cli import main as train_main

STEPS = ("--max-steps", "6", "--eval-steps", "6", "--threads", "1")


def test_torchrun_with_two_processes_publishes_exactly_one_version_from_rank_0(
    data_file: Callable[..., Path], tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_file("data.csv", labelled_rows(per_class=40))
    distributed = tmp_path / "distributed"
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "training.cli",
    ]
    result = subprocess.run(
        [*torchrun, *tiny_train_args(data, tiny_base_model, distributed, *STEPS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    published = [line for line in result.stdout.splitlines() if line.startswith("/")]
    assert published == [str(distributed / "models" / "sentiment" / "1")]  # rank 0 only prints it
    store = ModelStore(distributed / "models")
    assert store.versions("sentiment") == [1]
    assert not list((distributed / "models" / "sentiment").glob(".staging-*"))  # no other rank tried
    assert version_problems(Path(published[0]), "sentiment", 1) == []
    multi = read_manifest(Path(published[0]))
    assert multi["training"]["world_size"] == 2

    single = tmp_path / "single"
    assert train_main(tiny_train_args(data, tiny_base_model, single, *STEPS)) == 0
    capsys.readouterr()
    one = read_manifest(single / "models" / "sentiment" / "1")
    assert one["training"]["world_size"] == 1
    assert set(multi) == set(one)
    for key in ("metrics", "training", "dataset", "hyperparameters", "precision_parity"):
        assert set(multi[key]) == set(one[key]), key
    assert multi["dataset"]["fingerprint"] == one["dataset"]["fingerprint"]
    assert json.loads((Path(published[0]) / "config.json").read_text())["id2label"] == {
        "0": "negative",
        "1": "positive",
    }
