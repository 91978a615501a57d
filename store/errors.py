"""What can be wrong with a model store, a reference into it, or a version directory."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class: anything wrong with a model store, name, version or directory."""


class InvalidReference(StoreError):
    """A name, version or alias that is malformed or would escape the models directory."""


class ModelNotFound(StoreError):
    """No such name, version or alias."""


class CorruptStoreFile(StoreError):
    """A store file (aliases.json) that cannot be read; the message names the file, the reason and the fix."""


class VerificationError(StoreError):
    """A version directory does not match its manifest or is not servable."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))
