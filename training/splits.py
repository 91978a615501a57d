"""Text normalisation, de-duplication and the hash split.

A row's split is a pure function of its normalised text, so the same sentence lands in the same
split on every run, in every file order, and can never sit in two splits.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Row:
    """One labelled example; `row` is its 1-based position in `origin` (for error messages)."""

    text: str
    label: str | int
    origin: str
    row: int


def normalise(text: str) -> str:
    """The key used for de-duplication and hashing: NFKC, lower case, single spaces."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def hash_unit(text: str) -> float:
    """Map a text to [0, 1) by the sha256 of its normalised form."""
    digest = hashlib.sha256(normalise(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(text: str, dev_fraction: float, test_fraction: float) -> str:
    unit = hash_unit(text)
    if unit < dev_fraction:
        return "dev"
    if unit < dev_fraction + test_fraction:
        return "test"
    return "train"


@dataclass
class DedupeStats:
    duplicates: int = 0
    conflicting: int = 0


def dedupe(rows: Iterable[Row]) -> tuple[list[Row], DedupeStats]:
    """Keep the first row of each normalised text; drop every copy of texts labelled inconsistently.

    Conflicting copies are dropped rather than resolved because either label would be a guess.
    """
    first: dict[str, Row] = {}
    conflicts: set[str] = set()
    stats = DedupeStats()
    for row in rows:
        key = normalise(row.text)
        kept = first.get(key)
        if kept is None:
            first[key] = row
            continue
        stats.duplicates += 1
        if kept.label != row.label:
            conflicts.add(key)
    kept_rows = [row for key, row in first.items() if key not in conflicts]
    stats.conflicting = len(first) - len(kept_rows)
    return kept_rows, stats


def hash_split(rows: Sequence[Row], dev_fraction: float, test_fraction: float) -> dict[str, list[Row]]:
    splits: dict[str, list[Row]] = {"train": [], "dev": [], "test": []}
    for row in rows:
        splits[assign_split(row.text, dev_fraction, test_fraction)].append(row)
    return splits


def fingerprint(splits: dict[str, list[tuple[str, str]]]) -> str:
    """sha256 over (split, label name, text) of every example, in a canonical order."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        for label, text in sorted(splits[split]):
            digest.update(json.dumps([split, label, text], ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()
