"""File sources of training data: single files, globs, and the service's feedback logs; and how several
`--data` sources combine.

A file source is a path or a glob (`'feedback/*.jsonl'`, quoted, or expanded by the shell into several
`--data` values). A JSONL file whose records are the service's feedback records (store/feedback_format.py)
is read as feedback: each record's `label` and `text`; a record without text (the client did not send it
and the service did not keep it) cannot train a model and is skipped, counted in the manifest. Every other
file is a table read with --text-column / --label-column (training/data.py).

Combining (`--data builtin:rotten_tomatoes --data 'feedback/*.jsonl'`): the same normalised text in a later
source replaces it in every earlier source, so corrections listed after the data they correct win
(`overridden` counts those whose label changed); within one source the usual rule applies afterwards
(first copy kept, texts labelled inconsistently dropped: training/splits.py).
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from store.feedback_format import is_feedback_line, parse_feedback_line
from store.files import sha256_file
from training.splits import Row, normalise

log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")

# (spec of one source, already checked to be a table file) -> rows; training/data.py supplies it.
TableReader = Callable[[Path], list[Row]]


class SourceError(ValueError):
    """A file source is unusable; `problems` lists every reason (training/data.py raises them as DataError)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def expand(spec: str) -> list[Path]:
    """The files a spec names: itself, or every match of a glob (sorted, so runs are reproducible)."""
    if not _GLOB_CHARS & set(spec):
        return [Path(spec).expanduser()]
    matches = sorted(Path(p) for p in glob.glob(str(Path(spec).expanduser()), recursive=True) if Path(p).is_file())
    if not matches:
        raise SourceError([f"{spec}: no file matches"])
    return matches


def is_feedback_file(path: Path) -> bool:
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return is_feedback_line(line)
    return False


def feedback_rows(path: Path) -> tuple[list[Row], int]:
    """Labelled rows of one feedback file and how many records had no text; SourceError lists bad rows."""
    rows: list[Row] = []
    problems: list[str] = []
    without_text = 0
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = parse_feedback_line(line)
        if isinstance(parsed, str):
            if number == len(lines):  # no newline after it: a record still being written; the next run reads it
                log.warning("%s: row %d: incomplete last record skipped (%s)", path, number, parsed)
                continue
            problems.append(f"{path}: row {number}: {parsed}")
            continue
        if parsed.text is None:
            without_text += 1
            continue
        rows.append(Row(parsed.text, parsed.label, str(path), number))
    if problems:
        raise SourceError(problems)
    return rows, without_text


def file_source(spec: str, read_table: TableReader) -> tuple[list[Row], dict[str, Any]]:
    """Rows and a description of one file source (a file or a glob; feedback files detected by content)."""
    rows: list[Row] = []
    files: list[dict[str, Any]] = []
    problems: list[str] = []
    kinds: set[str] = set()
    without_text = 0
    for path in expand(spec):
        try:
            if is_feedback_file(path):
                found, skipped = feedback_rows(path)
                without_text += skipped
                kinds.add("feedback")
            else:
                found = read_table(path)
                kinds.add("file")
        except SourceError as exc:
            problems += exc.problems
            continue
        rows += found
        files.append({"path": str(path.resolve()), "sha256": sha256_file(path), "rows": len(found)})
    if problems:
        raise SourceError(problems)
    info: dict[str, Any] = {"source": spec, "kind": "feedback" if kinds == {"feedback"} else "file", "files": files}
    if "feedback" in kinds:
        info["feedback_without_text_skipped"] = without_text
        if without_text:
            log.info("%s: %d feedback records without text skipped (they cannot train)", spec, without_text)
    return rows, info


def merge_sources(sources: Sequence[list[Row]]) -> tuple[list[Row], dict[str, int]]:
    """Rows of every source in order, each text kept only in the last source that has it."""
    last: dict[str, int] = {}
    labels: dict[str, set[str | int]] = {}
    for index, rows in enumerate(sources):
        for row in rows:
            key = normalise(row.text)
            last[key] = index
            labels.setdefault(key, set()).add(row.label)
    merged: list[Row] = []
    replaced = overridden = 0
    counted: set[str] = set()
    for index, rows in enumerate(sources):
        for row in rows:
            key = normalise(row.text)
            if last[key] == index:
                merged.append(row)
                continue
            replaced += 1
            if key not in counted and len(labels[key]) > 1:
                counted.add(key)
                overridden += 1
    return merged, {"rows_replaced_by_later_sources": replaced, "texts_relabelled_by_later_sources": overridden}
