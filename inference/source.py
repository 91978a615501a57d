"""A located version: what the loader, the precision choice and the service know before any weights load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSource:
    """A version directory that passed the store's servable rules when it was located."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]
    labels: list[str]
    temperature: float
