"""The model-directory contract shared by training (writer) and the service (reader).

Layout::

    <models_dir>/<name>/<version>/      immutable, version = 1, 2, 3 ...
        config.json, model.safetensors, tokenizer files   (HF save_pretrained)
        manifest.json                                      (checksums of every other file)
        metrics.json, *.png, README.md
    <models_dir>/<name>/aliases.json    {"production": 3, ...}, replaced atomically
    <models_dir>/<name>/.staging-*      in-progress publishes, never listed

This module is stdlib-only on purpose: the service imports it without pulling in the
training stack.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
ALIASES = "aliases.json"
FORMAT_VERSION = 1
DEFAULT_NAME = "sentiment"
STAGING_PREFIX = ".staging-"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALIAS_RE = _NAME_RE
RESERVED_REFS = {"latest"}


class StoreError(Exception):
    """Base class: anything wrong with a model store, name, version or directory."""


class InvalidReference(StoreError):
    """A name, version or alias that is malformed or would escape the models directory."""


class ModelNotFound(StoreError):
    """No such name, version or alias."""


class VerificationError(StoreError):
    """A version directory does not match its manifest."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise InvalidReference(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' "
            "(no path separators, not starting with '.')"
        )
    return name


def validate_alias(alias: str) -> str:
    if not _ALIAS_RE.match(alias) or alias.isdigit() or alias in RESERVED_REFS:
        raise InvalidReference(f"invalid alias {alias!r}: letters, digits, '.', '_' or '-', not a number, not 'latest'")
    return alias


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iter_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            yield path


def file_inventory(root: Path, exclude: frozenset[str] = frozenset({MANIFEST})) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file below root, keyed by POSIX relative path."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in _iter_files(root):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        if path.is_symlink():
            # A symlink could point anywhere; record it so verify reports it as unexpected.
            inventory[rel] = {"sha256": "symlink", "size": -1}
            continue
        inventory[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return inventory


@dataclass(frozen=True)
class ModelVersion:
    """One published version on disk."""

    name: str
    version: int
    path: Path

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise VerificationError(path, [f"{MANIFEST} is missing"])
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError(path, [f"{MANIFEST} is not valid JSON: {exc}"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise VerificationError(path, [f"{MANIFEST} has no 'files' table"])
    return data


def verify_directory(path: Path, expect_name: str | None = None, expect_version: int | None = None) -> list[str]:
    """Every way the directory differs from its manifest; an empty list means it is intact."""
    try:
        manifest = read_manifest(path)
    except VerificationError as exc:
        return exc.problems
    problems: list[str] = []
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(f"unsupported format_version {manifest.get('format_version')!r} (expected {FORMAT_VERSION})")
    if expect_name is not None and manifest.get("name") != expect_name:
        problems.append(f"manifest names model {manifest.get('name')!r}, directory is {expect_name!r}")
    if expect_version is not None and manifest.get("version") != expect_version:
        problems.append(f"manifest says version {manifest.get('version')!r}, directory is {expect_version}")
    expected: dict[str, dict[str, Any]] = manifest["files"]
    actual = file_inventory(path)
    # A link could make the service read a file outside the models directory, whatever the
    # manifest says about it: published versions hold regular files only.
    for rel in sorted(rel for rel, info in actual.items() if info["sha256"] == "symlink"):
        problems.append(f"symlink: {rel} (published versions hold regular files only)")
    for rel in sorted(set(expected) - set(actual)):
        problems.append(f"missing file: {rel}")
    for rel in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected file: {rel}")
    for rel in sorted(set(expected) & set(actual)):
        want, got = expected[rel], actual[rel]
        if want.get("size") != got["size"]:
            problems.append(f"altered file: {rel} (size {got['size']}, manifest says {want.get('size')})")
        elif want.get("sha256") != got["sha256"]:
            problems.append(f"altered file: {rel} (sha256 mismatch)")
    return problems


@dataclass
class ModelStore:
    """Versions and aliases of named models below one root directory."""

    root: Path
    _lock_name: str = field(default=".lock", repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # ---- paths -----------------------------------------------------------------------
    def _contained(self, path: Path) -> Path:
        """Refuse anything whose real location is outside the models root (symlinks, '..')."""
        root = self.root.resolve()
        real = path.resolve()
        if real != root and root not in real.parents:
            raise InvalidReference(f"{path} resolves outside the models directory {root}")
        return real

    def name_dir(self, name: str) -> Path:
        return self._contained(self.root / validate_name(name))

    def version_dir(self, name: str, version: int) -> Path:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidReference(f"invalid version {version!r}: versions are positive integers")
        return self._contained(self.name_dir(name) / str(version))

    # ---- listing ---------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name))

    def versions(self, name: str) -> list[int]:
        base = self.name_dir(name)
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit() and p.name[0] != "0")

    def aliases(self, name: str) -> dict[str, int]:
        path = self.name_dir(name) / ALIASES
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): int(v) for k, v in data.items()}

    def resolve(self, name: str, ref: str | int = "latest") -> ModelVersion:
        """Turn 'latest', an alias or a version number into a version directory."""
        ref_s = str(ref).strip()
        versions = self.versions(name)
        if not versions:
            raise ModelNotFound(f"no published versions of model {name!r} under {self.root}")
        if ref_s == "latest":
            version = versions[-1]
        elif ref_s.isdigit():
            version = int(ref_s)
            if version not in versions:
                raise ModelNotFound(f"model {name!r} has no version {version} (have {versions})")
        else:
            validate_alias(ref_s)
            table = self.aliases(name)
            if ref_s not in table:
                raise ModelNotFound(f"model {name!r} has no alias {ref_s!r} (have {sorted(table)})")
            version = table[ref_s]
            if version not in versions:
                raise ModelNotFound(f"alias {ref_s!r} of {name!r} points at missing version {version}")
        return ModelVersion(name, version, self.version_dir(name, version))

    def verify(self, name: str, version: int) -> list[str]:
        return verify_directory(self.version_dir(name, version), name, version)

    # ---- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        base = self.name_dir(name)
        base.mkdir(parents=True, exist_ok=True)
        with (base / self._lock_name).open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield base
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        validate_alias(alias)
        if version not in self.versions(name):
            raise ModelNotFound(f"model {name!r} has no version {version}")
        with self._locked(name) as base:
            table = self.aliases(name)
            table[alias] = version
            _atomic_write_json(base / ALIASES, dict(sorted(table.items())))

    def remove_alias(self, name: str, alias: str) -> None:
        with self._locked(name) as base:
            table = self.aliases(name)
            if table.pop(validate_alias(alias), None) is None:
                raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
            _atomic_write_json(base / ALIASES, dict(sorted(table.items())))

    def publish(
        self,
        name: str,
        populate: Callable[[Path], None],
        manifest_fields: dict[str, Any],
    ) -> ModelVersion:
        """Stage a new version with `populate(staging_dir)`, checksum it, then rename it into place.

        The rename is the commit point: a crash before it leaves only a `.staging-*` folder that
        nothing lists; two publishers racing for the same number see the rename fail and take the next.
        """
        base = self.name_dir(name)
        base.mkdir(parents=True, exist_ok=True)
        self.clean_stale_staging(name)
        staging = base / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            populate(staging)
            _normalise_permissions(staging)
            files = file_inventory(staging)
            for rel in files:
                _fsync_path(staging / rel)
            while True:
                version = (self.versions(name) or [0])[-1] + 1
                manifest = {
                    "format_version": FORMAT_VERSION,
                    "name": name,
                    "version": version,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    **manifest_fields,
                    "files": files,
                }
                _atomic_write_json(staging / MANIFEST, manifest)
                os.chmod(staging / MANIFEST, 0o644)
                _fsync_path(staging)
                try:
                    os.rename(staging, base / str(version))
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue  # another publisher took this number
                    raise
                _fsync_path(base)
                return ModelVersion(name, version, base / str(version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def clean_stale_staging(self, name: str) -> list[Path]:
        """Remove staging folders whose owning process is gone (left by a killed publish)."""
        base = self.name_dir(name)
        removed: list[Path] = []
        if not base.is_dir():
            return removed
        for path in base.glob(f"{STAGING_PREFIX}*"):
            pid_part = path.name[len(STAGING_PREFIX) :].split("-", 1)[0]
            if pid_part.isdigit() and _pid_alive(int(pid_part)):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _normalise_permissions(root: Path) -> None:
    # transformers writes model.safetensors as 0600; a non-root server reading a mounted
    # volume must be able to read every file.
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
