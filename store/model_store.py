"""Versions and aliases of named models below one root directory.

Layout::

    <models_dir>/<name>/<version>/      immutable, version = 1, 2, 3 ...
        config.json, model.safetensors, tokenizer files   (HF save_pretrained)
        manifest.json                                      (checksums of every other file)
        metrics.json, *.png, README.md, ...
    <models_dir>/<name>/aliases.json    {"production": 3, ...}, replaced atomically
    <models_dir>/<name>/.staging-*      in-progress publishes, never listed
    <models_dir>/<name>/.parity/        host parity records (store/parity_records.py)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.errors import CorruptStoreFile, InvalidReference, ModelNotFound, VerificationError
from store.files import atomic_write_json, file_inventory, fsync_path, normalise_permissions
from store.manifest import FORMAT_VERSION, MANIFEST
from store.servable import Servable, check_servable, content_problems, version_problems

ALIASES = "aliases.json"
DEFAULT_NAME = "sentiment"
STAGING_PREFIX = ".staging-"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESERVED_REFS = {"latest"}


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise InvalidReference(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' "
            "(no path separators, not starting with '.')"
        )
    return name


def validate_alias(alias: str) -> str:
    if not _NAME_RE.match(alias) or alias.isdigit() or alias in RESERVED_REFS:
        raise InvalidReference(f"invalid alias {alias!r}: letters, digits, '.', '_' or '-', not a number, not 'latest'")
    return alias


@dataclass(frozen=True)
class ModelVersion:
    """One published version on disk."""

    name: str
    version: int
    path: Path


@dataclass
class ModelStore:
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

    def aliases_file(self, name: str) -> Path:
        return self.name_dir(name) / ALIASES

    def change_markers(self, name: str) -> tuple[Path, Path]:
        """What changes when `latest` or an alias moves: the name directory (a new version renamed in)
        and the aliases file (replaced atomically). Watching their stat results is enough."""
        return self.aliases_file(name), self.name_dir(name)

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
        path = self.aliases_file(name)
        if not path.is_file():
            return {}
        fix = (
            f"restore it from a backup, or delete it and set the aliases again with "
            f"`sentiment-models --models-dir {self.root} alias --name {name} <alias> <version>`"
        )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptStoreFile(f"{path} is not readable JSON ({exc}); {fix}") from exc
        if not isinstance(data, dict):
            raise CorruptStoreFile(f"{path} must hold a JSON object of alias -> version; {fix}")
        table: dict[str, int] = {}
        for alias, version in data.items():
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise CorruptStoreFile(f"{path}: alias {alias!r} maps to {version!r}, not a version number; {fix}")
            table[str(alias)] = version
        return table

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

    def problems(self, name: str, version: int) -> list[str]:
        return version_problems(self.version_dir(name, version), name, version)

    def servable(self, found: ModelVersion) -> Servable:
        """The resolved version if it passes every servable rule (VerificationError otherwise)."""
        return check_servable(found.path, found.name, found.version)

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
            atomic_write_json(base / ALIASES, dict(sorted(table.items())))

    def remove_alias(self, name: str, alias: str) -> None:
        with self._locked(name) as base:
            table = self.aliases(name)
            if table.pop(validate_alias(alias), None) is None:
                raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
            atomic_write_json(base / ALIASES, dict(sorted(table.items())))

    def publish(
        self,
        name: str,
        populate: Callable[[Path], None],
        manifest_fields: dict[str, Any],
    ) -> ModelVersion:
        """Stage a new version with `populate(staging_dir)`, check it is servable, checksum it, rename it in.

        The rename is the commit point: a crash before it leaves only a `.staging-*` folder that
        nothing lists; two publishers racing for the same number see the rename fail and take the next.
        A staged version that breaks a servable rule is refused here, before any number is taken.
        """
        base = self.name_dir(name)
        base.mkdir(parents=True, exist_ok=True)
        self.clean_stale_staging(name)
        staging = base / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            populate(staging)
            problems = content_problems(staging, manifest_fields)
            if problems:
                raise VerificationError(staging, problems)
            normalise_permissions(staging)
            files = file_inventory(staging, exclude=frozenset({MANIFEST}))
            for rel in files:
                fsync_path(staging / rel)
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
                atomic_write_json(staging / MANIFEST, manifest)
                try:
                    os.rename(staging, base / str(version))
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue  # another publisher took this number
                    raise
                fsync_path(base)
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
