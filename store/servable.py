"""The servable-model rules: what a version directory must hold for the service to load it.

One function, called by the store before it commits a publish (so `sentiment-train` cannot publish a
version the service would refuse), by `sentiment-models verify`, and by the service before it loads
anything. Checks that need no model code: required files, no pickle-based weights, labels that agree
with config.json, a usable temperature, a weights file whose header is whole, a tokenizer file that
parses, and well-formed quality files (canary set, reference distributions) where the version has them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import VerificationError
from store.manifest import checksum_problems, read_manifest
from store.quality import quality_problems
from store.weights import WEIGHTS_FILE, read_header

REQUIRED_FILES = ("config.json", WEIGHTS_FILE, "tokenizer.json")
# Loading any of these runs pickle, i.e. arbitrary code: published versions hold safetensors only.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".ckpt"})


@dataclass(frozen=True)
class Servable:
    """What the service needs to know about a version that passed every rule."""

    labels: list[str]
    temperature: float
    manifest: dict[str, Any]


def content_problems(path: Path, manifest: dict[str, Any]) -> list[str]:
    """Every servable rule `path` (with this manifest) breaks; empty when the service can load it."""
    problems = [f"lacks {f}: it is not a servable model directory" for f in REQUIRED_FILES if not (path / f).is_file()]
    pickles = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        problems.append(f"holds pickle-based weight files {pickles}; only safetensors are loaded")
    labels = manifest.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        problems.append(f"manifest.json: 'labels' must list at least two distinct names, got {labels!r}")
        labels = None
    temperature = manifest.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not math.isfinite(temperature):
        problems.append(f"manifest.json: 'temperature' must be a number, got {temperature!r}")
    elif temperature <= 0:
        problems.append(f"manifest.json: 'temperature' must be positive, got {temperature!r}")
    if (path / "config.json").is_file():
        problems += _config_problems(path / "config.json", labels)
    if (path / WEIGHTS_FILE).is_file():
        try:
            if not read_header(path / WEIGHTS_FILE):
                problems.append(f"{WEIGHTS_FILE} holds no tensors")
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    if (path / "tokenizer.json").is_file():
        problems += _tokenizer_problems(path / "tokenizer.json")
    problems += quality_problems(path, manifest, labels)  # canary and reference: optional, but whole when present
    return problems


def _config_problems(config_path: Path, labels: list[str] | None) -> list[str]:
    """config.json's id2label must name the manifest's labels for ids 0..n-1, in order, without gaps."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        id2label = {int(k): v for k, v in config["id2label"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"config.json is unreadable or lacks id2label ({type(exc).__name__}: {exc})"]
    if sorted(id2label) != list(range(len(id2label))):
        return [f"config.json id2label ids {sorted(id2label)} are not 0..{len(id2label) - 1}"]
    config_labels = [id2label[i] for i in range(len(id2label))]
    if labels is not None and config_labels != labels:
        return [
            f"manifest labels {labels} disagree with config.json id2label {config_labels}; "
            "the model would report wrong labels"
        ]
    return []


def _tokenizer_problems(tokenizer_path: Path) -> list[str]:
    try:
        data = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"tokenizer.json is not valid JSON ({exc})"]
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        return ["tokenizer.json has no 'model' section: not a fast-tokenizer file"]
    return []


def version_problems(path: Path, expect_name: str | None = None, expect_version: int | None = None) -> list[str]:
    """Checksums first (a directory that no longer matches its manifest is not judged further), then contents."""
    problems = checksum_problems(path, expect_name, expect_version)
    if problems:
        return problems
    return content_problems(path, read_manifest(path))


def check_servable(path: Path, expect_name: str | None = None, expect_version: int | None = None) -> Servable:
    """The version at `path` if it passes every rule; VerificationError listing every problem otherwise."""
    problems = version_problems(path, expect_name, expect_version)
    if problems:
        raise VerificationError(path, problems)
    manifest = read_manifest(path)
    return Servable(list(manifest["labels"]), float(manifest.get("temperature", 1.0)), manifest)
