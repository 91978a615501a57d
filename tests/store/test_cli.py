from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from store.cli import main


def _run(capsys: pytest.CaptureFixture[str], models: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what earlier steps (publishing) printed
    code = main(["--models-dir", str(models), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_quiet_exit_code_tracks_whether_a_version_exists(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    code, out, _ = _run(capsys, models, "list", "--name", "sentiment", "--quiet")
    assert (code, out) == (1, "")
    publish_tiny()
    publish_tiny(seed=1)
    code, out, _ = _run(capsys, models, "list", "--name", "sentiment", "--quiet")
    assert (code, out.split()) == (0, ["sentiment/1", "sentiment/2"])
    assert _run(capsys, models, "list", "--name", "other", "--quiet")[0] == 1


def test_list_shows_versions_aliases_and_metrics(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    publish_tiny(metrics={"dev": {"accuracy": 0.8731}})
    publish_tiny(name="topics", labels=["a", "b", "c"])
    assert _run(capsys, models, "alias", "production", "1")[0] == 0
    code, out, _ = _run(capsys, models, "list")
    assert code == 0
    assert "sentiment" in out and "topics" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("1 ") and "0.8731" in line)
    assert "[production]" in line and "negative,positive" in line


def test_show_prints_the_manifest(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = publish_tiny(temperature=1.7)
    code, out, _ = _run(capsys, tmp_path / "models", "show", "1")
    shown = json.loads(out)
    assert code == 0 and shown["temperature"] == 1.7 and shown["path"] == str(path)
    assert isinstance(shown["files"], str)
    code, out, _ = _run(capsys, tmp_path / "models", "show", "--files")
    assert "model.safetensors" in json.loads(out)["files"]
    code, _, err = _run(capsys, tmp_path / "models", "show", "9")
    assert code == 1 and "has no version 9" in err


def test_verify_names_every_problem_and_fails(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    good, bad = publish_tiny(), publish_tiny(seed=1)
    assert _run(capsys, models, "verify", "--all") == (0, "OK   sentiment/1\nOK   sentiment/2\n", "")
    weights = bytearray((bad / "model.safetensors").read_bytes())
    weights[len(weights) // 2] ^= 0x01  # one flipped bit somewhere in the tensor data
    (bad / "model.safetensors").write_bytes(bytes(weights))
    (bad / "tokenizer.json").unlink()
    (bad / "extra.bin").write_bytes(b"x")
    code, out, _ = _run(capsys, models, "verify", "2")
    assert code == 1
    assert out.splitlines() == [
        "FAIL sentiment/2: missing file: tokenizer.json",
        "FAIL sentiment/2: unexpected file: extra.bin",
        "FAIL sentiment/2: altered file: model.safetensors (sha256 mismatch)",
    ]
    code, out, _ = _run(capsys, models, "verify", "--all")
    assert code == 1 and "OK   sentiment/1" in out
    assert _run(capsys, models, "verify", "--path", str(good))[0] == 0


def test_verify_catches_labels_that_disagree_with_the_manifest(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = publish_tiny()
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["labels"] = ["positive", "negative"]  # swapped: checksums still match, meaning does not
    manifest_path.write_text(json.dumps(manifest))
    code, out, _ = _run(capsys, tmp_path / "models", "verify")
    assert code == 1 and "disagree with config.json id2label" in out


def test_alias_set_change_resolve_and_delete(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    publish_tiny()
    publish_tiny(seed=1)
    assert _run(capsys, models, "alias", "production", "1")[0] == 0
    assert _run(capsys, models, "alias", "production") == (0, "1\n", "")
    assert _run(capsys, models, "alias", "production", "2")[0] == 0
    assert json.loads((models / "sentiment" / "aliases.json").read_text()) == {"production": 2}
    assert _run(capsys, models, "alias", "canary", "1")[0] == 0
    assert _run(capsys, models, "alias") == (0, "canary -> 1\nproduction -> 2\n", "")
    assert _run(capsys, models, "alias", "--delete", "canary")[0] == 0
    assert _run(capsys, models, "alias")[1] == "production -> 2\n"
    code, _, err = _run(capsys, models, "alias", "production", "7")
    assert code == 1 and "has no version 7" in err
    code, _, err = _run(capsys, models, "alias", "latest", "1")
    assert code == 1 and "invalid alias" in err
    assert not list((models / "sentiment").glob(".aliases.json.*"))  # no temp files left behind


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"production": 1', "is not readable JSON"),
        ('["production"]', "must hold a JSON object"),
        ('{"production": "one"}', "not a version number"),
    ],
)
def test_a_corrupt_aliases_file_is_named_with_the_reason_and_the_fix(
    publish_tiny: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    models = tmp_path / "models"
    publish_tiny()
    aliases = models / "sentiment" / "aliases.json"
    aliases.write_text(content)
    for argv in (["list"], ["alias"], ["alias", "canary", "1"], ["show", "production"]):
        code, out, err = _run(capsys, models, *argv)
        assert code == 1 and out == "", argv
        assert err.startswith(f"sentiment-models: {aliases}"), (argv, err)
        assert reason in err and f"sentiment-models --models-dir {models} alias --name sentiment" in err, err
        assert "Traceback" not in err
    assert _run(capsys, models, "show", "1")[0] == 0  # a version number needs no alias


class _Entry:
    def __init__(self, name: str, load: Callable[[], object]) -> None:
        self.name, self.load = name, load


def _missing_stack() -> object:
    raise ImportError("needs datasets (the train extra)")


def _adds_a_parser_that_refuses(_sub: object) -> None:
    raise ImportError("needs torch (the train extra)")


@pytest.mark.parametrize("load", [_missing_stack, lambda: _adds_a_parser_that_refuses], ids=["load", "add_parser"])
def test_a_plugin_command_whose_stack_is_missing_is_listed_as_unavailable(
    load: Callable[[], object], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A serving-only install (the api image): `parity` cannot run, every other command still must.
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [_Entry("parity", load)])
    models = tmp_path / "models"
    assert _run(capsys, models, "list", "--name", "sentiment", "--quiet")[0] == 1
    code, out, _ = _run(capsys, models, "parity")
    assert code == 2 and "not available in this installation" in out and "the train extra" in out
