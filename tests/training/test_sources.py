"""Several --data sources, globs and the service's feedback files as training data (training/sources.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from store.feedback_format import feedback_record, record_line
from tests.helpers.data import labelled_rows
from training.cli import build_parser, config_from_args
from training.config import TrainConfig
from training.data import DataError, load_data
from training.sources import merge_sources
from training.splits import Row


def feedback_file(path: Path, rows: list[tuple[str | None, str]]) -> Path:
    records = [
        feedback_record(
            request_id=f"req{i}", index=0, label=label, predicted="positive",
            probabilities={"negative": 0.3, "positive": 0.7}, model_name="sentiment", version=1,
            text=text, text_source="client" if text else None, received_at="2026-12-01T00:00:00+00:00",
        )
        for i, (text, label) in enumerate(rows)
    ]  # fmt: skip
    path.write_bytes(b"".join(record_line(r) for r in records))
    return path


def test_repeated_data_flags_make_one_primary_source_and_extras() -> None:
    parse = build_parser().parse_args
    config = config_from_args(parse(["--data", "builtin:rotten_tomatoes", "--data", "fb/a.jsonl", "fb/b.jsonl"]))
    assert config.data == "builtin:rotten_tomatoes" and config.extra_data == ("fb/a.jsonl", "fb/b.jsonl")
    assert config_from_args(parse(["--data", "x.csv"])).extra_data == ()
    assert config_from_args(parse([])).data == "builtin:rotten_tomatoes"
    assert config.hyperparameters()["extra_data"] == ["fb/a.jsonl", "fb/b.jsonl"]
    assert TrainConfig(extra_data=["a"]).extra_data == ("a",)  # type: ignore[arg-type]  # as read back from JSON
    assert "--extra-data" not in build_parser().format_help()


def test_feedback_files_combine_with_a_table_and_later_sources_win(
    data_file: Callable[..., Path], tmp_path: Path
) -> None:
    rows = labelled_rows(per_class=40)
    table = data_file("data.csv", rows)
    corrected = rows[0]["text"]  # labelled negative in the table
    (tmp_path / "feedback").mkdir()
    feedback_file(
        tmp_path / "feedback" / "feedback-1.jsonl",
        [(corrected, "positive"), ("a brand new review", "negative"), (None, "negative")],
    )
    feedback_file(tmp_path / "feedback" / "feedback-2.jsonl", [("another new review", "positive")])
    config = TrainConfig(data=str(table), extra_data=(str(tmp_path / "feedback" / "*.jsonl"),), dev_fraction=0.2)
    data = load_data(config)
    texts = {
        t: data.labels[y] for split in data.splits.values() for t, y in zip(split.texts, split.label_ids, strict=True)
    }
    assert texts[corrected] == "positive"
    assert texts["a brand new review"] == "negative" and texts["another new review"] == "positive"
    assert sum(len(s.texts) for s in data.splits.values()) == len(rows) + 2
    (extra,) = data.info["extra_sources"]
    assert extra["kind"] == "feedback" and extra["rows"] == 3 and extra["feedback_without_text_skipped"] == 1
    assert [f["rows"] for f in extra["files"]] == [2, 1]
    assert data.info["combined"] == {"rows_replaced_by_later_sources": 1, "texts_relabelled_by_later_sources": 1}
    assert data.info["kind"] == "file" and data.info["files"]["data"]["path"] == str(table.resolve())


def test_bad_feedback_rows_are_named_by_file_and_row(data_file: Callable[..., Path], tmp_path: Path) -> None:
    path = feedback_file(tmp_path / "feedback-1.jsonl", [("fine", "positive")])
    path.write_text(
        path.read_text() + "not json\n" + '{"format": "sentiment-feedback/1", "text": "x"}\n'
        '{"format": "sentiment-feedback/1", "label": "negative", "text": "   "}\n'
    )
    with pytest.raises(DataError) as caught:
        load_data(TrainConfig(data=str(data_file()), extra_data=(str(path),)))
    assert caught.value.problems == [
        f"{path}: row 2: not JSON (Expecting value)",
        f"{path}: row 3: 'label' must be a non-empty string, got None",
        f"{path}: row 4: 'text' must be a non-empty string when present",
    ]


def test_a_record_still_being_written_is_skipped(data_file: Callable[..., Path], tmp_path: Path) -> None:
    path = feedback_file(tmp_path / "feedback-1.jsonl", [("a whole record", "positive")])
    path.write_text(path.read_text() + '{"format": "sentiment-feedback/1", "lab')  # no newline: mid-write
    data = load_data(TrainConfig(data=str(data_file()), extra_data=(str(path),)))
    assert data.info["extra_sources"][0]["rows"] == 1


def test_a_glob_that_matches_nothing_is_an_error(data_file: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing-\*\.jsonl: no file matches"):
        load_data(TrainConfig(data=str(data_file()), extra_data=(str(tmp_path / "nothing-*.jsonl"),)))


def test_feedback_alone_can_be_the_data(tmp_path: Path) -> None:
    texts = [
        (f"review number {i} was {'great' if i % 2 else 'awful'}", "positive" if i % 2 else "negative")
        for i in range(40)
    ]
    path = feedback_file(tmp_path / "feedback-1.jsonl", texts)
    data = load_data(TrainConfig(data=str(path), dev_fraction=0.25))
    assert data.labels == ["negative", "positive"] and data.info["kind"] == "feedback"
    assert sum(len(s.texts) for s in data.splits.values()) == 40


def test_merge_keeps_each_text_in_the_last_source_only() -> None:
    a = [Row("Good", "positive", "a", 1), Row("bad", "negative", "a", 2)]
    b = [Row("good ", "negative", "b", 1)]
    merged, stats = merge_sources([a, b])
    assert [(r.text, r.origin) for r in merged] == [("bad", "a"), ("good ", "b")]
    assert stats == {"rows_replaced_by_later_sources": 1, "texts_relabelled_by_later_sources": 1}
