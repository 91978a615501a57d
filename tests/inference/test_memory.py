"""Memory estimate and probes that decide whether a second version fits beside the active one."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.memory import (
    FIXED_OVERHEAD,
    MemoryEstimate,
    check_fits,
    estimate,
    host_available_bytes,
)
from store.weights import element_count

MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"


def test_weights_are_counted_from_the_safetensors_header(shared_models_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    path = shared_models_dir / "sentiment" / "1"
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
    params = sum(p.numel() for p in model.parameters())
    elements = element_count(path / "model.safetensors")
    assert params <= elements <= params + 1024  # plus buffers saved alongside (position ids)

    cpu = estimate(path, "cpu", "fp32", max_batch_tokens=1024, max_batch_size=64, max_length=64)
    gpu = estimate(path, "cuda", "bf16", max_batch_tokens=1024, max_batch_size=64, max_length=64)
    assert cpu.weights_bytes == elements * 4 and gpu.weights_bytes == elements * 2
    bigger = estimate(path, "cpu", "fp32", max_batch_tokens=8192, max_batch_size=128, max_length=64)
    assert bigger.activation_bytes > cpu.activation_bytes > 0
    assert cpu.total_bytes == max(cpu.load_peak_bytes, cpu.weights_bytes + cpu.activation_bytes) + FIXED_OVERHEAD


def test_cpu_bf16_weights_count_two_bytes_once_cast_but_load_as_fp32(shared_models_dir: Path) -> None:
    path = shared_models_dir / "sentiment" / "1"
    elements = element_count(path / "model.safetensors")
    bf16 = estimate(path, "cpu", "bf16", max_batch_tokens=1024, max_batch_size=64, max_length=64)
    assert bf16.weights_bytes == elements * 2  # inference/precision.py casts the weights on CPU too
    assert bf16.load_peak_bytes == elements * 4  # transformers reads them as fp32 first
    gpu = estimate(path, "cuda", "fp16", max_batch_tokens=1024, max_batch_size=64, max_length=64)
    assert gpu.load_peak_bytes == gpu.weights_bytes  # the fp32 copy stays in host memory


def test_host_memory_is_the_smaller_of_meminfo_and_the_cgroup_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert host_available_bytes(meminfo, cgroup) == 8_000_000 * 1024  # no cgroup files: meminfo
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("123\n")
    assert host_available_bytes(meminfo, cgroup) == 8_000_000 * 1024
    (cgroup / "memory.max").write_text(f"{2 << 30}\n")
    (cgroup / "memory.current").write_text(f"{1 << 30}\n")
    assert host_available_bytes(meminfo, cgroup) == 1 << 30
    assert host_available_bytes(tmp_path / "absent", cgroup) is None


@pytest.mark.parametrize(("free", "fits"), [(None, True), (1 << 40, True), (100 << 20, False)])
def test_check_fits(free: int | None, fits: bool) -> None:
    need = MemoryEstimate(weights_bytes=90 << 20, activation_bytes=30 << 20)
    problem = check_fits(need, "cuda:0", lambda device: free)
    assert (problem is None) == fits
    if not fits:
        assert problem is not None and "184 MiB on cuda:0" in problem and "100 MiB is free" in problem
