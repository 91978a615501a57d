"""Durable file primitives every writer of the store uses: checksums, fsync, atomic JSON replacement."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a rename is only durable once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    """Replace `path` with `data` as JSON: written to a temporary sibling, fsynced, then renamed over it,
    so a reader sees the old file or the new one, never a torn write, even across a power cut."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def iter_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            yield path


def file_inventory(root: Path, exclude: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file below root, keyed by POSIX relative path."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in iter_files(root):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        if path.is_symlink():
            # A symlink could point anywhere; record it so verification reports it as unexpected.
            inventory[rel] = {"sha256": "symlink", "size": -1}
            continue
        inventory[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return inventory


def normalise_permissions(root: Path) -> None:
    # transformers writes model.safetensors as 0600; a non-root server reading a mounted
    # volume must be able to read every file.
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
