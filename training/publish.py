"""Commit a trained classifier to the store as its next version (the model-directory contract: store/).

The store checks the staged directory against the servable rules before it takes a version number,
so a version published here is one `sentiment-serve` accepts.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from store.model_store import ModelStore, ModelVersion


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "tokenizers", "accelerate", "datasets", "safetensors"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def publish_version(
    store: ModelStore,
    name: str,
    model: Any,
    tokenizer: Any,
    manifest_fields: Mapping[str, Any],
    extra_files: Mapping[str, str | bytes | Callable[[Path], None]] | None = None,
) -> ModelVersion:
    """Publish `model` + `tokenizer` (HF objects) as the next version of `name`.

    `extra_files` maps a relative file name to its text, bytes, or a writer called with the
    destination path (for plots). The label names must already be in `model.config.id2label`.
    """
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    if any(v.startswith("LABEL_") for v in id2label.values()):
        raise ValueError(f"refusing to publish placeholder label names {id2label}: set real label names")

    def populate(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        for rel, content in (extra_files or {}).items():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(dest)
            elif isinstance(content, bytes):
                dest.write_bytes(content)
            else:
                dest.write_text(content, encoding="utf-8")

    fields: dict[str, Any] = {
        "labels": [id2label[i] for i in sorted(id2label)],
        "libraries": library_versions(),
        "git_commit": git_commit(),
        **manifest_fields,
    }
    fields.setdefault("temperature", 1.0)
    return store.publish(name, populate, json.loads(json.dumps(fields)))
