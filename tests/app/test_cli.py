"""sentiment-serve: generated flags, precedence, and refusing models that must not be served."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app import __version__
from app.cli import build_parser, flag_name, main, parse_settings
from app.config import Settings
from store.files import sha256_file
from tests.helpers.models import build_tiny_bert
from tests.helpers.serve import run_serve


def test_every_setting_has_a_flag_and_env_var() -> None:
    help_text = build_parser().format_help()
    for name in Settings.model_fields:
        assert flag_name(name) in help_text, name
        assert f"SENTIMENT_{name.upper()}" in help_text, name
    assert "--model-version" in help_text and "SENTIMENT_VERSION" in help_text


def test_version_flag_prints_the_program_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sentiment-serve {__version__}"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_PORT", "9000")
    monkeypatch.setenv("SENTIMENT_VERSION", "production")
    monkeypatch.setenv("SENTIMENT_ACCESS_LOG", "true")
    from_env = parse_settings([])
    assert (from_env.port, from_env.version, from_env.access_log) == (9000, "production", True)
    flagged = parse_settings(["--port", "9100", "--model-version", "3", "--no-access-log", "--dtype", "bf16"])
    assert (flagged.port, flagged.version, flagged.access_log, flagged.dtype) == (9100, "3", False, "bf16")
    assert parse_settings(["--models-dir", "/srv/models"]).models_dir == Path("/srv/models")


def test_invalid_settings_exit_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000"]) == 2
    assert "--port / SENTIMENT_PORT" in capsys.readouterr().err
    assert main(["--max-length", "512", "--max-batch-tokens", "256"]) == 2
    assert "max_batch_tokens" in capsys.readouterr().err


# ---- refusing to start (real subprocesses) -------------------------------------------------------
def test_missing_models_dir_is_refused(tmp_path: Path) -> None:
    result = run_serve("--models-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "sentiment-train" in result.stderr


def test_missing_model_version_is_refused(publish_tiny: Callable[..., Path]) -> None:
    models = publish_tiny().parent.parent
    result = run_serve("--models-dir", str(models), "--model-version", "7")
    assert result.returncode == 2
    assert "has no version 7" in result.stderr and "sentiment-models" in result.stderr
    other = run_serve("--models-dir", str(models), "--name", "other")
    assert other.returncode == 2 and "sentiment-train" in other.stderr


def _rewrite_manifest(version_dir: Path, change: Callable[[dict], None]) -> None:
    path = version_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_corrupted_weights_are_refused(publish_tiny: Callable[..., Path]) -> None:
    version_dir = publish_tiny()
    weights = version_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = run_serve("--models-dir", str(version_dir.parent.parent))
    assert result.returncode == 2
    assert "altered file: model.safetensors (sha256 mismatch)" in result.stderr
    assert "sentiment-train" in result.stderr


def test_altered_config_is_refused(publish_tiny: Callable[..., Path]) -> None:
    version_dir = publish_tiny()
    config = version_dir / "config.json"
    config.write_text(config.read_text().replace('"negative"', '"NEGATIVE"'))
    result = run_serve("--models-dir", str(version_dir.parent.parent))
    assert result.returncode == 2 and "altered file: config.json" in result.stderr


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m["files"]["model.safetensors"].update(sha256="0" * 64), "altered file: model.safetensors"),
        (lambda m: m.update(version=5), "manifest says version 5"),
        (lambda m: m.update(labels=["positive", "negative"]), "disagree with config.json id2label"),
        (lambda m: m.update(temperature=-1), "'temperature' must be positive"),
        (lambda m: m["files"].pop("tokenizer.json"), "unexpected file: tokenizer.json"),
    ],
)
def test_lying_manifests_are_refused(
    publish_tiny: Callable[..., Path], change: Callable[[dict], None], problem: str
) -> None:
    version_dir = publish_tiny()
    _rewrite_manifest(version_dir, change)
    result = run_serve("--models-dir", str(version_dir.parent.parent))
    assert result.returncode == 2, result.stderr
    assert problem in result.stderr


@pytest.mark.parametrize(
    ("weights_of", "problem"),
    [
        (None, "implausible safetensors header"),  # garbage: the servable rules catch it before loading
        ("wider", "could not be loaded"),  # a whole safetensors file of another architecture: loading fails
    ],
)
def test_unloadable_weights_with_matching_manifest_are_refused(
    publish_tiny: Callable[..., Path], tmp_path: Path, weights_of: str | None, problem: str
) -> None:
    # Checksums can be recomputed over anything; the refusal must still be clean, not a crash.
    version_dir = publish_tiny()
    weights = version_dir / "model.safetensors"
    if weights_of is None:
        weights.write_bytes(b"not a safetensors file")
    else:
        wider = build_tiny_bert(["negative", "positive"], max_position_embeddings=256)
        wider.save_pretrained(tmp_path / "wider", safe_serialization=True)
        weights.write_bytes((tmp_path / "wider" / "model.safetensors").read_bytes())
    _rewrite_manifest(
        version_dir,
        lambda m: m["files"]["model.safetensors"].update(sha256=sha256_file(weights), size=weights.stat().st_size),
    )
    result = run_serve("--models-dir", str(version_dir.parent.parent))
    assert result.returncode == 2
    assert problem in result.stderr and "Traceback" not in result.stderr


def test_pickle_weights_are_refused_even_when_listed(publish_tiny: Callable[..., Path]) -> None:
    version_dir = publish_tiny()
    stray = version_dir / "pytorch_model.bin"
    stray.write_bytes(b"pickle")
    _rewrite_manifest(
        version_dir,
        lambda m: m["files"].update({"pytorch_model.bin": {"sha256": sha256_file(stray), "size": 6}}),
    )
    result = run_serve("--models-dir", str(version_dir.parent.parent))
    assert result.returncode == 2 and "pickle-based weight files" in result.stderr


@pytest.mark.parametrize(
    ("workers", "threads", "device", "expected"),
    [(None, 2, "cpu", 2), (None, 1, "cpu", 1), (None, 8, "cuda", 1), (3, 2, "cpu", 3), (1, 16, "cpu", 1)],
)
def test_inference_workers_default_to_two_on_a_multi_core_cpu(
    workers: int | None, threads: int, device: str, expected: int
) -> None:
    settings = Settings(inference_workers=workers, torch_threads=threads)
    assert settings.resolved_inference_workers(device) == expected


def test_a_corrupt_aliases_file_is_refused_naming_the_file_and_the_fix(publish_tiny: Callable[..., Path]) -> None:
    models = publish_tiny().parent.parent
    aliases = models / "sentiment" / "aliases.json"
    aliases.write_text('{"production": 1,')
    result = run_serve("--models-dir", str(models), "--model-version", "production")
    assert result.returncode == 2, result.stderr
    assert str(aliases) in result.stderr and "is not readable JSON" in result.stderr
    assert "restore it from a backup, or delete it and set the aliases again" in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "aliases.json" in line]) == 1
