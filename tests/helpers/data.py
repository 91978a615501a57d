"""Small labelled data files and quick `sentiment-train` flags for the training tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

# Keyword -> label: a tiny model learns these within a few dozen steps, so end-to-end tests can tell
# a correctly ordered evaluation from a scrambled one.
KEYWORDS = {
    "negative": ["awful", "boring", "dreadful", "terrible", "dull"],
    "neutral": ["average", "okay", "ordinary", "standard", "middling"],
    "positive": ["superb", "wonderful", "brilliant", "delightful", "great"],
}
FILLERS = ["film", "movie", "story", "cast", "plot", "script", "ending", "score"]


def labelled_rows(labels: Sequence[str] = ("negative", "positive"), per_class: int = 40) -> list[dict[str, str]]:
    """Distinct texts whose label is given by a keyword; rows alternate between classes."""
    rows = []
    for i in range(per_class):
        for label in labels:
            word = KEYWORDS[label][i % len(KEYWORDS[label])]
            rows.append({"text": f"{word} {FILLERS[i % len(FILLERS)]} number {i}", "label": label})
    return rows


def write_rows(path: Path, rows: Sequence[dict[str, object]]) -> Path:
    """Write rows as CSV, JSONL or Parquet depending on the file suffix."""
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(list(rows)), path)
    else:
        raise ValueError(path)
    return path


def tiny_train_args(data: Path, base: Path, tmp_path: Path, *extra: str) -> list[str]:
    """sentiment-train flags for a quick run of the tiny model on a small file."""
    return [
        "--data",
        str(data),
        "--base-model",
        str(base),
        "--models-dir",
        str(tmp_path / "models"),
        "--run-dir",
        str(tmp_path / "run"),
        "--dev-fraction",
        "0.25",
        "--test-fraction",
        "0.15",
        "--batch-size",
        "16",
        "--eval-batch-size",
        "32",
        "--learning-rate",
        "3e-3",
        "--warmup-ratio",
        "0",
        "--max-length",
        "16",
        "--logging-steps",
        "5",
        "--log-level",
        "WARNING",
        *extra,
    ]
