from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.errors import InvalidReference, ModelNotFound
from store.model_store import ModelStore
from store.servable import version_problems


def test_publish_writes_verifiable_version(publish_tiny, tmp_path: Path) -> None:
    path = publish_tiny()
    assert path == tmp_path / "models" / "sentiment" / "1"
    assert version_problems(path, "sentiment", 1) == []
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "positive"]
    assert "model.safetensors" in manifest["files"]
    assert (path / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_versions_increment_and_resolve(publish_tiny, tmp_path: Path) -> None:
    publish_tiny()
    publish_tiny(seed=1)
    store = ModelStore(tmp_path / "models")
    assert store.versions("sentiment") == [1, 2]
    assert store.resolve("sentiment", "latest").version == 2
    assert store.resolve("sentiment", "1").version == 1
    store.set_alias("sentiment", "production", 1)
    assert store.resolve("sentiment", "production").version == 1
    with pytest.raises(ModelNotFound):
        store.resolve("sentiment", "staging")
    with pytest.raises(ModelNotFound):
        store.resolve("sentiment", 7)


@pytest.mark.parametrize("bad", ["../etc", "/abs", "a/b", "..", ".hidden", ""])
def test_names_cannot_escape(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidReference):
        ModelStore(tmp_path).resolve(bad, "latest")


def test_symlinked_name_outside_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "models"
    root.mkdir()
    (root / "evil").symlink_to(outside)
    with pytest.raises(InvalidReference):
        ModelStore(root).versions("evil")


def test_verify_names_altered_missing_and_extra(publish_tiny) -> None:
    path = publish_tiny()
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    (path / "README.md").unlink()
    (path / "notes.txt").write_text("x")
    problems = version_problems(path)
    assert "altered file: model.safetensors (sha256 mismatch)" in problems
    assert "missing file: README.md" in problems
    assert "unexpected file: notes.txt" in problems
