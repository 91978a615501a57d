"""One set of servable rules: what `sentiment-models verify` refuses, `sentiment-serve` refuses, with the
same reason, and what training publishes, the service accepts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inference.errors import ModelLoadError
from inference.loader import locate
from store.cli import main as models_main
from store.errors import VerificationError
from store.model_store import ModelStore
from tests.helpers.models import TINY_FILES, build_tiny_bert, reseal
from training.publish import publish_version


def _json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda v: _json(v / "manifest.json", change)


def _resealed(change: Callable[[Path], None]) -> Callable[[Path], None]:
    """A change whose manifest is rewritten to match: checksums pass, the contents rules must not."""

    def apply(v: Path) -> None:
        change(v)
        reseal(v)

    return apply


def _truncate_weights(v: Path) -> None:
    weights = v / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4096])


def _gap_in_id2label(v: Path) -> None:
    _json(v / "config.json", lambda c: c.update(id2label={"0": "negative", "2": "positive"}))


def _symlink(v: Path) -> None:
    (v / "README.md").unlink()
    (v / "README.md").symlink_to(v / "metrics.json")


BREAKAGES: dict[str, tuple[Callable[[Path], None] | None, str | None]] = {
    "intact": (None, None),
    "missing file": (lambda v: (v / "README.md").unlink(), "missing file: README.md"),
    "unexpected file": (lambda v: (v / "notes.txt").write_text("hi"), "unexpected file: notes.txt"),
    "altered file": (lambda v: _json(v / "config.json", lambda c: c.update(hidden_dropout_prob=0.5)), "altered file"),
    "symlinked file": (_symlink, "symlink: README.md"),
    "no manifest": (lambda v: (v / "manifest.json").unlink(), "manifest.json is missing"),
    "manifest not JSON": (lambda v: (v / "manifest.json").write_text("{oops"), "manifest.json is not valid JSON"),
    "unknown format": (_manifest(lambda m: m.update(format_version=99)), "unsupported format_version"),
    "wrong version": (_manifest(lambda m: m.update(version=7)), "manifest says version 7"),
    "labels swapped": (_manifest(lambda m: m.update(labels=["positive", "negative"])), "disagree with config.json"),
    "one label": (_manifest(lambda m: m.update(labels=["positive"])), "at least two distinct names"),
    "negative temperature": (_manifest(lambda m: m.update(temperature=-1)), "'temperature' must be positive"),
    "gap in id2label": (_resealed(_gap_in_id2label), "are not 0..1"),
    "pickle weights": (_resealed(lambda v: (v / "extra.ckpt").write_bytes(b"x")), "pickle-based weight files"),
    "no tokenizer": (_resealed(lambda v: (v / "tokenizer.json").unlink()), "lacks tokenizer.json"),
    "truncated weights": (_resealed(_truncate_weights), "lies outside the file"),
    "tokenizer not JSON": (_resealed(lambda v: (v / "tokenizer.json").write_text("[")), "tokenizer.json is not valid"),
}


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    from tests.helpers.models import publish_tiny

    return publish_tiny(tmp_path_factory.mktemp("intact"), tokenizer)


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_verify_and_serve_give_the_same_verdict(
    breakage: str, intact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, problem = BREAKAGES[breakage]
    models = tmp_path / "models"
    version_dir = models / "sentiment" / "1"
    shutil.copytree(intact.parent.parent, models, symlinks=True)
    if change is not None:
        change(version_dir)

    capsys.readouterr()
    verify_code = models_main(["--models-dir", str(models), "verify", "--name", "sentiment", "1"])
    verify_out = capsys.readouterr().out
    try:
        locate(ModelStore(models), "sentiment", "1")  # what sentiment-serve runs before it opens a port
        serve_error = None
    except ModelLoadError as exc:
        serve_error = str(exc)

    if problem is None:
        assert verify_code == 0 and serve_error is None, (verify_out, serve_error)
    else:
        assert verify_code == 1 and serve_error is not None, (verify_out, serve_error)
        assert problem in verify_out, verify_out
        assert problem in serve_error, serve_error


def test_the_store_refuses_to_publish_what_the_service_would_refuse(tmp_path: Path, tokenizer: Any) -> None:
    store = ModelStore(tmp_path / "models")
    model = build_tiny_bert(["negative", "positive"])
    # A stray pickle file next to the safetensors weights: training must not be able to publish it.
    files = {**TINY_FILES, "optimizer.pt": b"pickle"}
    with pytest.raises(VerificationError, match="pickle-based weight files"):
        publish_version(store, "sentiment", model, tokenizer, {"temperature": 1.0}, extra_files=files)
    assert store.versions("sentiment") == []
    assert not list((tmp_path / "models" / "sentiment").glob(".staging-*"))
    with pytest.raises(VerificationError, match="'temperature' must be positive"):
        publish_version(store, "sentiment", model, tokenizer, {"temperature": 0.0}, extra_files=TINY_FILES)
    assert store.versions("sentiment") == []
