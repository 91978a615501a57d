"""Where parity records (precisions, packed execution) live, and how they are read back (stdlib only).

Two places, most specific first:

- a host sidecar `<models>/<name>/.parity/<version>-<host fingerprint>.json`, written by
  `sentiment-models parity` on the machine that serves (version directories are immutable, so a
  recomputation never touches them);
- the manifest's tables, measured on the publishing machine before the version was committed.

Two tables, each keyed by precision: `precision_parity` (a reduced precision against fp32) and
`packing_parity` (packed against padded execution in that precision).

A sidecar is only believed when it names the same model, version and weights checksum as the
manifest, so a store rebuilt under the same version numbers cannot inherit stale records.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.files import atomic_write_json
from store.model_store import ModelStore
from store.weights import WEIGHTS_FILE

PARITY_DIR = ".parity"
PRECISION_TABLE = "precision_parity"
PACKING_TABLE = "packing_parity"
REQUIRED_KEYS = ("agreement", "accuracy_delta", "max_prob_diff")


def sidecar_path(store: ModelStore, name: str, version: int, fingerprint: str) -> Path:
    return store.name_dir(name) / PARITY_DIR / f"{version}-{fingerprint}.json"


def weights_sha256(manifest: dict[str, Any]) -> str | None:
    entry = (manifest.get("files") or {}).get(WEIGHTS_FILE)
    return entry.get("sha256") if isinstance(entry, dict) else None


def entry_problem(entry: Any) -> str | None:
    """Why a per-precision record cannot be trusted, or None when it is well-formed."""
    if not isinstance(entry, dict):
        return f"record is {type(entry).__name__}, not an object"
    for key in REQUIRED_KEYS:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{key!r} is {value!r}, not a number"
    if not 0.0 <= entry["agreement"] <= 1.0:
        return f"'agreement' {entry['agreement']!r} lies outside [0, 1]"
    return None


def write_sidecar(
    store: ModelStore,
    name: str,
    version: int,
    manifest: dict[str, Any],
    fingerprint: str,
    host: dict[str, Any],
    data: dict[str, Any],
    parity: dict[str, dict[str, Any]],
    packing: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Atomically (tmp + rename) write this host's parity for one version; returns the path."""
    path = sidecar_path(store, name, version, fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "name": name,
        "version": version,
        "weights_sha256": weights_sha256(manifest),
        "host": {"fingerprint": fingerprint, **host},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": data,
        PRECISION_TABLE: parity,
        **({PACKING_TABLE: packing} if packing else {}),
    }
    atomic_write_json(path, body)
    return path


@dataclass
class ParityRecords:
    """Per-precision records in force for one version on one host, and where each came from."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    table: str = PRECISION_TABLE
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # records that were ignored, and why

    def merged(self) -> dict[str, dict[str, Any]]:
        return {p: {**e, "source": self.origins[p]} for p, e in self.entries.items()}

    def drop(self, precision: str, reason: str) -> None:
        """Stop trusting one record, remembering why."""
        self.problems.append(f"{self.origins.pop(precision)}: {precision}: {reason}")
        del self.entries[precision]


def _add(records: ParityRecords, table: Any, origin: str) -> None:
    if table is None:
        return
    if not isinstance(table, dict):
        records.problems.append(f"{origin}: {records.table} is not an object")
        return
    for precision, entry in table.items():
        problem = entry_problem(entry)
        if problem is not None:
            records.problems.append(f"{origin}: {precision}: {problem}")
            continue
        records.entries[precision] = entry
        records.origins[precision] = origin


def read_records(
    store: ModelStore,
    name: str,
    version: int,
    manifest: dict[str, Any],
    fingerprint: str,
    table: str = PRECISION_TABLE,
) -> ParityRecords:
    """Manifest records overlaid by this host's sidecar (when one exists and matches the weights)."""
    records = ParityRecords(table=table)
    _add(records, manifest.get(table), "manifest")
    path = sidecar_path(store, name, version, fingerprint)
    if not path.is_file():
        return records
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        records.problems.append(f"{path}: unreadable ({exc}); ignored")
        return records
    if not isinstance(sidecar, dict):
        records.problems.append(f"{path}: not a JSON object; ignored")
        return records
    identity = (sidecar.get("name"), sidecar.get("version"), sidecar.get("weights_sha256"))
    expected = (name, version, weights_sha256(manifest))
    if identity != expected:
        records.problems.append(
            f"{path}: measured for {identity[0]}/{identity[1]} with other weights, not this version; ignored"
        )
        return records
    _add(records, sidecar.get(table), str(path))
    return records
