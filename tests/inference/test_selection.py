"""Precision selection with faked CPU feature sets and parity records (no model needed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from inference.errors import ModelLoadError
from inference.hardware import CpuFeatures, host_fingerprint, parse_cpuinfo
from inference.selection import candidates, choose, choose_packing, drop_other_methods
from store.model_store import ModelStore
from store.parity_records import ParityRecords, read_records, sidecar_path, write_sidecar
from tests.helpers.cpus import ALDER_LAKE, CASCADE_LAKE, EPYC_GENOA, GRAVITON3, SAPPHIRE_RAPIDS, SKYLAKE


def cpu(text: str, arch: str = "x86_64") -> CpuFeatures:
    return parse_cpuinfo(text, arch)


def record(agreement: float, delta: float = 0.0, max_diff: float = 0.01) -> dict[str, Any]:
    return {"agreement": agreement, "accuracy_delta": delta, "max_prob_diff": max_diff}


def records(**entries: dict[str, Any]) -> ParityRecords:
    return ParityRecords(entries=dict(entries), origins=dict.fromkeys(entries, "manifest"))


@pytest.mark.parametrize(
    ("cpuinfo", "arch", "expected"),
    [
        (EPYC_GENOA, "x86_64", ["bf16", "int8", "fp32"]),
        (SAPPHIRE_RAPIDS, "x86_64", ["bf16", "int8", "fp32"]),
        (CASCADE_LAKE, "x86_64", ["int8", "fp32"]),
        (ALDER_LAKE, "x86_64", ["int8", "fp32"]),
        (SKYLAKE, "x86_64", ["fp32"]),
        (GRAVITON3, "aarch64", ["fp32"]),  # not claimed off x86: no fast path we have measured
        ("", "x86_64", ["fp32"]),  # no /proc/cpuinfo (not Linux)
    ],
)
def test_auto_on_cpu_follows_the_instruction_set(cpuinfo: str, arch: str, expected: list[str]) -> None:
    assert candidates("auto", "cpu", cpu(cpuinfo, arch), cuda_bf16=False) == expected


def test_auto_on_gpu_prefers_bf16_where_supported_else_fp16() -> None:
    no_flags = cpu(SKYLAKE)
    assert candidates("auto", "cuda", no_flags, cuda_bf16=True) == ["bf16", "fp16", "fp32"]
    assert candidates("auto", "cuda:1", no_flags, cuda_bf16=False) == ["fp16", "fp32"]


def test_explicit_choices_keep_fp32_as_the_only_fallback() -> None:
    epyc = cpu(EPYC_GENOA)
    assert candidates("fp32", "cpu", epyc, False) == ["fp32"]
    assert candidates("int8", "cpu", epyc, False) == ["int8", "fp32"]
    assert candidates("bf16", "cpu", cpu(SKYLAKE), False) == ["bf16", "fp32"]  # emulated, but asked for
    assert candidates("fp16", "cuda", epyc, False) == ["fp16", "fp32"]


@pytest.mark.parametrize(("dtype", "device"), [("fp16", "cpu"), ("int8", "cuda")])
def test_impossible_explicit_choices_are_refused(dtype: str, device: str) -> None:
    with pytest.raises(ModelLoadError, match=dtype):
        candidates(dtype, device, cpu(EPYC_GENOA), cuda_bf16=True)  # type: ignore[arg-type]


def test_auto_takes_the_first_candidate_whose_parity_passes() -> None:
    choice = choose("auto", ["bf16", "int8", "fp32"], records(bf16=record(0.999), int8=record(0.995)), 0.99)
    assert choice.dtype == "bf16" and choice.skipped == ()
    assert choice.parity is not None and choice.parity["agreement"] == 0.999 and choice.parity["source"] == "manifest"


def test_auto_falls_back_past_refused_and_unmeasured_candidates() -> None:
    refused_bf16 = records(bf16=record(0.95), int8=record(0.992))
    choice = choose("auto", ["bf16", "int8", "fp32"], refused_bf16, 0.99)
    assert choice.dtype == "int8"
    assert len(choice.skipped) == 1 and "0.9500" in choice.skipped[0] and "below" in choice.skipped[0]

    nothing_recorded = choose("auto", ["bf16", "int8", "fp32"], ParityRecords(), 0.99)
    assert nothing_recorded.dtype == "fp32" and nothing_recorded.parity is None
    assert [s.split(":")[0] for s in nothing_recorded.skipped] == ["bf16", "int8"]
    assert all("sentiment-models parity" in s for s in nothing_recorded.skipped)


def test_the_bound_is_configurable() -> None:
    recorded = records(int8=record(0.97))
    assert choose("auto", ["int8", "fp32"], recorded, 0.99).dtype == "fp32"
    assert choose("auto", ["int8", "fp32"], recorded, 0.95).dtype == "int8"


def test_explicit_precision_runs_unmeasured_with_a_warning_but_not_below_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="inference"):
        unmeasured = choose("int8", ["int8", "fp32"], ParityRecords(), 0.99)
    assert unmeasured.dtype == "int8" and unmeasured.parity is None
    assert "never measured" in caplog.text
    assert choose("int8", ["int8", "fp32"], records(int8=record(0.9)), 0.99).dtype == "fp32"


# ---- where records come from ------------------------------------------------------------------
def manifest(sha: str = "a" * 64, parity: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "sentiment", "version": 3, "files": {"model.safetensors": {"sha256": sha}}}
    if parity is not None:
        body["precision_parity"] = parity
    return body


def test_host_sidecar_overrides_the_manifest_per_precision(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    published = manifest(parity={"bf16": record(0.999), "int8": record(0.999)})
    path = write_sidecar(store, "sentiment", 3, published, "cpu-abc", {"device": "cpu"}, {}, {"int8": record(0.97)})
    assert path == sidecar_path(store, "sentiment", 3, "cpu-abc") == tmp_path / "sentiment/.parity/3-cpu-abc.json"

    found = read_records(store, "sentiment", 3, published, "cpu-abc")
    assert found.entries["bf16"]["agreement"] == 0.999 and found.origins["bf16"] == "manifest"
    assert found.entries["int8"]["agreement"] == 0.97 and found.origins["int8"] == str(path)
    other_host = read_records(store, "sentiment", 3, published, "cpu-def")
    assert other_host.entries["int8"]["agreement"] == 0.999


def test_a_sidecar_for_other_weights_is_ignored(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    write_sidecar(store, "sentiment", 3, manifest(sha="b" * 64), "cpu-abc", {}, {}, {"bf16": record(1.0)})
    found = read_records(store, "sentiment", 3, manifest(sha="a" * 64), "cpu-abc")
    assert found.entries == {} and "other weights" in found.problems[0]


def test_malformed_records_are_ignored_and_reported(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    bad = {"bf16": {"agreement": "high"}, "int8": record(1.5), "fp16": [], "ok": record(0.999)}
    found = read_records(store, "sentiment", 3, manifest(parity=bad), "cpu-abc")
    assert list(found.entries) == ["ok"]
    assert len(found.problems) == 3
    sidecar = sidecar_path(store, "sentiment", 3, "cpu-abc")
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text("{not json")
    assert any("unreadable" in p for p in read_records(store, "sentiment", 3, manifest(), "cpu-abc").problems)
    sidecar.write_text(json.dumps([1, 2]))
    assert any("not a JSON object" in p for p in read_records(store, "sentiment", 3, manifest(), "cpu-abc").problems)


def test_host_fingerprint_follows_the_kernel_relevant_flags_only() -> None:
    genoa = host_fingerprint("cpu", cpu(EPYC_GENOA))
    assert genoa.startswith("cpu-") and genoa == host_fingerprint("cpu", cpu(EPYC_GENOA))
    assert genoa == host_fingerprint("cpu", cpu(EPYC_GENOA.replace("fpu ", "fpu hypervisor ")))
    assert genoa != host_fingerprint("cpu", cpu(EPYC_GENOA.replace(" avx512_bf16", "")))


def test_records_measured_with_another_method_are_not_trusted() -> None:
    found = ParityRecords(
        entries={
            "bf16": {**record(0.999), "method": "bf16 autocast over fp32 weights"},  # not how bf16 runs now
            "int8": {
                **record(0.999),
                "method": "int8 dynamic quantisation of Linear layers (per-channel weights, per-batch activations)",
            },
            "fp16": record(0.999),  # no method recorded: the contract does not require one
        },
        origins={"bf16": "manifest", "int8": "manifest", "fp16": "manifest"},
    )
    drop_other_methods(found, "cpu")
    assert sorted(found.entries) == ["fp16", "int8"]
    assert found.problems == [
        "manifest: bf16: measured as 'bf16 autocast over fp32 weights', but this service runs 'bf16 weights'; "
        "re-measure it"
    ]
    assert choose("auto", ["bf16", "int8", "fp32"], found, 0.99).dtype == "int8"


# ---- packed or padded ---------------------------------------------------------------------------
def test_auto_packs_only_with_a_passing_record_and_on_packs_unless_one_disagrees() -> None:
    passing, failing, none = records(bf16=record(0.995)), records(bf16=record(0.9)), records()
    assert choose_packing("auto", None, "bf16", passing, 0.99).packed
    assert choose_packing("auto", None, "bf16", passing, 0.99).parity["source"] == "manifest"  # type: ignore[index]
    refused = choose_packing("auto", None, "bf16", failing, 0.99)
    assert not refused.packed and "below min_precision_agreement" in refused.reason
    unmeasured = choose_packing("auto", None, "bf16", none, 0.99)
    assert not unmeasured.packed and "sentiment-models parity" in unmeasured.reason
    assert choose_packing("on", None, "bf16", none, 0.99).packed  # the operator's choice, unmeasured
    assert not choose_packing("on", None, "bf16", failing, 0.99).packed  # but not against a record
    # A record is per precision: bf16's record says nothing about fp32.
    assert not choose_packing("auto", None, "fp32", passing, 0.99).packed


def test_packing_off_or_an_unpackable_model_pads() -> None:
    passing = records(fp32=record(1.0))
    assert not choose_packing("off", None, "fp32", passing, 0.99).packed
    cannot = choose_packing("on", "DistilBert is not a BertForSequenceClassification", "fp32", passing, 0.99)
    assert not cannot.packed and "cannot be packed" in cannot.reason
    assert cannot.describe()["layout"] == "padded"
