"""sentiment-train end to end with a tiny random BERT: publish, reload with plain transformers, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inference.loader import load_model
from inference.options import LoadOptions
from inference.scores import softmax
from store.files import sha256_file
from store.model_store import ModelStore
from store.servable import version_problems
from tests.helpers.data import labelled_rows, tiny_train_args
from training.cli import build_parser, config_from_args, main
from training.data import load_data

LABELS = ["negative", "neutral", "positive"]


def _train(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _plain_transformers_logits(path: Path, texts: list[str], max_length: int) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return model(**batch).logits.numpy()


def test_train_publishes_a_model_plain_transformers_can_use(
    data_file: Callable[..., Path], tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_file("data.csv", labelled_rows(LABELS, per_class=40))
    argv = tiny_train_args(data, tiny_base_model, tmp_path, "--max-steps", "60", "--eval-steps", "30")
    code, out, err = _train(capsys, argv)
    assert code == 0, err
    published = Path(out.strip().splitlines()[-1])
    assert published == tmp_path / "models" / "sentiment" / "1"
    assert version_problems(published, "sentiment", 1) == []

    config = json.loads((published / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert config["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["labels"] == LABELS
    assert manifest["base_model"]["weights_sha256"] == {
        "model.safetensors": sha256_file(tiny_base_model / "model.safetensors")
    }
    dataset = manifest["dataset"]
    assert dataset["files"]["data"]["sha256"] == sha256_file(data)
    assert sum(dataset["split_sizes"].values()) == 120
    assert set(dataset["label_counts"]["train"]) == set(LABELS)
    assert manifest["hyperparameters"]["learning_rate"] == 3e-3
    assert manifest["training"]["global_step"] == 60
    assert 0.05 <= manifest["temperature"] <= 20
    for name in ("README.md", "metrics.json", "training_curves.png", "confusion_matrix.png", "reliability.png"):
        assert name in manifest["files"]
    for png in published.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (published / "README.md").read_text()
    assert "## Intended use" in card and "## Bias, risks and misuse" in card
    assert not list((tmp_path / "run").glob("checkpoint-*")), "checkpoints are removed after publishing"

    # The published metrics must be reproducible from the directory alone, row for row.
    splits = load_data(config_from_args(build_parser().parse_args(argv))).splits
    metrics = json.loads((published / "metrics.json").read_text())
    for role in ("dev", "test"):
        logits = _plain_transformers_logits(published, splits[role].texts, 16)
        labels = np.asarray(splits[role].label_ids)
        accuracy = float((logits.argmax(1) == labels).mean())
        assert accuracy == pytest.approx(manifest["metrics"][role]["accuracy"], abs=1e-9)
        probs = softmax(logits)
        nll = float(-np.log(probs[np.arange(len(labels)), labels]).mean())
        assert nll == pytest.approx(metrics["splits"][role]["nll"], abs=1e-4)
    # A model that learned nothing would make the row-order check above meaningless.
    assert manifest["metrics"]["dev"]["accuracy"] >= 0.6

    # What sentiment-train publishes, sentiment-serve accepts (the same servable rules, store/servable.py).
    loaded = load_model(ModelStore(tmp_path / "models"), "sentiment", "latest", LoadOptions(device="cpu"))
    assert loaded.source.labels == LABELS and loaded.source.version == 1


def test_bad_data_exits_2_names_the_row_and_publishes_nothing(
    data_file: Callable[..., Path], tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = labelled_rows()
    rows[9]["text"] = ""
    data = data_file("data.csv", rows)
    code, out, err = _train(capsys, tiny_train_args(data, tiny_base_model, tmp_path, "--max-steps", "5"))
    assert code == 2
    assert f"{data}: row 10: empty text in column 'text'" in err
    assert out == ""
    assert ModelStore(tmp_path / "models").versions("sentiment") == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dev-fraction", "0.95"], "dev_fraction"),
        (["--precision", "fp16", "--use-cpu"], "fp16 needs a GPU"),
        (["--name", "../escape"], "invalid model name"),
    ],
)
def test_bad_configuration_exits_2(
    data_file: Callable[..., Path],
    tiny_base_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    code, _, err = _train(capsys, tiny_train_args(data_file(), tiny_base_model, tmp_path, "--max-steps", "2", *flags))
    assert code == 2 and message in err


def test_presets_and_overrides(tmp_path: Path) -> None:
    parser = build_parser()
    default = config_from_args(parser.parse_args([]))
    assert default.data == "builtin:rotten_tomatoes" and default.name == "sentiment"
    assert default.models_dir == Path("models")
    full = config_from_args(parser.parse_args(["--preset", "full", "--epochs", "2", "--label-names", "a, b"]))
    assert full.epochs == 2.0 and full.label_names == ("a", "b")
    assert full.learning_rate != default.learning_rate
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "huge"])


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(run_dir.glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, f"training exited early: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def test_resume_after_kill_continues_from_the_last_complete_checkpoint(
    data_file: Callable[..., Path], tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tiny_train_args(data_file(), tiny_base_model, tmp_path, "--max-steps", "400", "--eval-steps", "4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _wait_for_checkpoint(tmp_path / "run", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    assert ModelStore(tmp_path / "models").versions("sentiment") == []
    (tmp_path / "run" / "checkpoint-9999").mkdir()  # as if the kill had hit mid-save: no trainer_state.json

    # A different learning rate would make the old optimiser state meaningless: refused.
    code, _, err = _train(capsys, [*argv, "--resume", "--learning-rate", "1e-3"])
    assert code == 2 and "different learning_rate" in err

    code, out, err = _train(capsys, [*argv, "--resume", "--max-steps", "24"])
    assert code == 0, err
    manifest = json.loads((Path(out.strip().splitlines()[-1]) / "manifest.json").read_text())
    resumed_from = manifest["training"]["resumed_from"]
    assert resumed_from is not None and "checkpoint-9999" not in resumed_from
    assert 4 <= int(resumed_from.rsplit("-", 1)[-1]) < 24
    assert manifest["training"]["global_step"] == 24
