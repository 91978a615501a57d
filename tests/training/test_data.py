from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.data import KEYWORDS, labelled_rows, write_rows
from training.config import TrainConfig
from training.data import DataError, load_data
from training.splits import assign_split


def _config(path: Path, **kwargs: object) -> TrainConfig:
    return TrainConfig(data=str(path), **kwargs)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_string_labels_load_from_every_format(data_file: Callable[..., Path], suffix: str) -> None:
    rows = labelled_rows(("negative", "neutral", "positive"), per_class=30)
    data = load_data(_config(data_file(f"data{suffix}", rows)))
    assert data.labels == ["negative", "neutral", "positive"]
    assert sum(data.info["split_sizes"].values()) == 90
    train = data.splits["train"]
    for text, label_id in zip(train.texts, train.label_ids, strict=True):
        assert text.split()[0] in KEYWORDS[data.labels[label_id]]
    assert data.info["label_counts"]["train"] == {name: train.label_ids.count(i) for i, name in enumerate(data.labels)}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_integer_labels_get_names_from_flag_or_their_numbers(data_file: Callable[..., Path], suffix: str) -> None:
    ids = {"negative": 0, "neutral": 1, "positive": 2}
    rows = [{"sentence": r["text"], "y": ids[r["label"]]} for r in labelled_rows(tuple(ids), 30)]
    path = data_file(f"data{suffix}", rows)
    plain = load_data(_config(path, text_column="sentence", label_column="y"))
    assert plain.labels == ["0", "1", "2"]
    named = load_data(_config(path, text_column="sentence", label_column="y", label_names=("neg", "neu", "pos")))
    assert named.labels == ["neg", "neu", "pos"]
    assert named.splits["train"].label_ids == plain.splits["train"].label_ids


def test_integer_labels_sort_numerically(data_file: Callable[..., Path]) -> None:
    rows = [{"text": f"text {i} {'x' * (i % 7)}", "label": [2, 10, -1][i % 3]} for i in range(90)]
    assert load_data(_config(data_file("data.jsonl", rows))).labels == ["-1", "2", "10"]


def test_label_names_must_cover_every_integer(data_file: Callable[..., Path]) -> None:
    rows = [{"text": f"text number {i}", "label": i % 3} for i in range(60)]
    with pytest.raises(DataError, match=r"integer labels \[2\] have no entry in --label-names"):
        load_data(_config(data_file("data.csv", rows), label_names=("a", "b")))


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        load_data(_config(path, **kwargs))
    return str(info.value)


def test_missing_column_names_file_and_columns(data_file: Callable[..., Path]) -> None:
    path = data_file("data.csv", [{"review": r["text"], "label": r["label"]} for r in labelled_rows()])
    assert _error(path) == f"{path}: missing column 'text' (columns: review, label)"


def test_empty_text_and_missing_label_name_their_rows(data_file: Callable[..., Path]) -> None:
    rows = labelled_rows()
    rows[2]["text"] = "   "
    rows[4]["label"] = ""
    path = data_file("data.csv", rows)
    message = _error(path)
    assert f"{path}: row 3: empty text in column 'text'" in message
    assert f"{path}: row 5: missing label in column 'label'" in message


def test_non_integer_number_label_is_rejected(data_file: Callable[..., Path]) -> None:
    rows = [{"text": f"text number {i}", "label": float(i % 2)} for i in range(40)]
    rows[6]["label"] = 0.5
    path = data_file("data.jsonl", rows)
    assert _error(path) == f"{path}: row 7: label 0.5 is neither a string nor an integer"


def test_mixed_label_kinds_are_rejected(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.jsonl", [{"text": f"t {i}", "label": i % 2} for i in range(20)])
    dev = write_rows(tmp_path / "dev.jsonl", [{"text": f"d {i}", "label": "positive"} for i in range(4)])
    assert "is a string but" in _error(train, dev_data=str(dev))


def test_unknown_label_in_explicit_dev_file_names_its_row(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.csv", labelled_rows())
    dev_rows = labelled_rows(per_class=2)
    dev_rows[1]["label"] = "neutral"
    dev = write_rows(tmp_path / "dev.csv", dev_rows)
    message = _error(train, dev_data=str(dev))
    assert message.startswith(f"{dev}: row 2: label 'neutral' does not occur in the training split")


def test_rare_label_hashed_only_into_dev_is_reported(data_file: Callable[..., Path]) -> None:
    dev_text = next(t for t in (f"a lone mixed review {i}" for i in range(1000)) if assign_split(t, 0.1, 0.1) == "dev")
    rows = [*labelled_rows(), {"text": dev_text, "label": "mixed"}]
    path = data_file("data.csv", rows)
    assert f"{path}: row {len(rows)}: label 'mixed' does not occur in the training split" in _error(path)


def test_single_class_is_rejected(data_file: Callable[..., Path]) -> None:
    path = data_file("data.csv", [{"text": f"great film {i}", "label": "positive"} for i in range(50)])
    assert _error(path) == f"{path}: only one class ('positive') in the training rows; need at least two"


def test_too_few_rows_is_rejected(data_file: Callable[..., Path], tmp_path: Path) -> None:
    path = data_file("data.csv", labelled_rows(per_class=2))
    assert _error(path).startswith(f"{path}: too few rows: ")
    header_only = tmp_path / "empty.csv"
    header_only.write_text("text,label\n")
    assert _error(header_only) == f"{header_only}: too few rows: the file holds no data rows"


def test_unreadable_and_unsupported_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine", "label": "positive"}\n{"text": "cut off\n', encoding="utf-8")
    assert _error(broken).startswith(f"{broken}: cannot be read as JSONL")
    other = tmp_path / "data.xlsx"
    other.write_text("x")
    assert "unsupported file type" in _error(other)
    assert _error(tmp_path / "absent.csv") == f"{tmp_path / 'absent.csv'}: no such file"


def test_duplicates_are_dropped_and_conflicts_removed(data_file: Callable[..., Path]) -> None:
    rows = labelled_rows()
    rows.append({"text": "  " + rows[0]["text"].upper() + " ", "label": rows[0]["label"]})  # duplicate
    rows.append({"text": rows[1]["text"], "label": "negative" if rows[1]["label"] == "positive" else "positive"})
    data = load_data(_config(data_file("data.csv", rows)))
    assert data.info["dedupe"] == {"duplicates_dropped": 2, "conflicting_texts_dropped": 1}
    assert sum(data.info["split_sizes"].values()) == len(rows) - 3


def test_hub_source_without_network_is_a_clear_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hub dataset 'nobody/no-such-dataset' could not be loaded"):
        load_data(TrainConfig(data="hf:nobody/no-such-dataset"))


def test_builtin_rotten_tomatoes() -> None:
    data = load_data(TrainConfig())
    assert data.labels == ["negative", "positive"]
    sizes = data.info["split_sizes"]
    assert 12_500 < sum(sizes.values()) < 12_800
    assert 0.08 < sizes["dev"] / sum(sizes.values()) < 0.12
    assert "no explicit data licence" in data.info["licence"]
    assert data.info["dropped_non_review_rows"] == 1097
    positive_share = data.info["label_counts"]["train"]["positive"] / sizes["train"]
    assert 0.55 < positive_share < 0.61
