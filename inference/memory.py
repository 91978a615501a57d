"""Will another model version fit beside the active one? Estimated before anything is loaded.

During a swap both versions are resident: the new one's weights plus the activations of its
warm-up batch (the largest batch the service will ever run) come on top of everything the active
version holds. The estimate reads only the safetensors header and config.json, so a swap that
would not fit is refused in milliseconds instead of dying half-way with an out-of-memory error.

Stdlib-only at import time; torch is imported only to ask a CUDA device.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from store.weights import WEIGHTS_FILE, element_count

log = logging.getLogger("inference.memory")

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")
# Caching-allocator fragmentation, temporaries we do not model (masks, residual copies), the tokenizer.
ACTIVATION_SAFETY = 2.0
FIXED_OVERHEAD = 64 << 20

# device -> free bytes now (None: unknown, the check is skipped). Tests substitute a fake.
MemoryProbe = Callable[[str], int | None]


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int  # resident once loaded and prepared
    activation_bytes: int  # the full-budget warm-up batch
    load_peak_bytes: int = 0  # while loading: transformers reads the weights as fp32 before they are cast

    @property
    def total_bytes(self) -> int:
        return max(self.load_peak_bytes, self.weights_bytes + self.activation_bytes) + FIXED_OVERHEAD


def weight_element_bytes(device: str, dtype: str) -> int:
    """Bytes per weight once prepared (inference/precision.py): bf16/fp16 weights are cast to 2 bytes on
    both kinds of device; int8 quantises from an fp32 copy and keeps embeddings fp32, so count fp32."""
    return 2 if dtype in ("bf16", "fp16") else 4


def estimate(
    path: Path, device: str, dtype: str, max_batch_tokens: int, max_batch_size: int, max_length: int | None
) -> MemoryEstimate:
    """Bytes a version at `path` needs on `device`: weights + activations of the full-budget warm-up batch."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    element = weight_element_bytes(device, dtype)
    elements = element_count(path / WEIGHTS_FILE)
    weights = elements * element
    # On a CPU the fp32 copy read by from_pretrained is resident until the cast; on CUDA it stays in host RAM.
    load_peak = weights if device.startswith("cuda") else elements * 4
    hidden = int(config.get("hidden_size", 768))
    intermediate = int(config.get("intermediate_size", 4 * hidden))
    heads = int(config.get("num_attention_heads", 12))
    length = max_length or int(config.get("max_position_embeddings", 512))
    count = max(1, min(max_batch_size, max_batch_tokens // length))
    tokens = count * length
    activations = (
        count * heads * length * length * 3  # attention scores, probabilities, masked copy
        + tokens * intermediate * 2  # feed-forward up-projection and its activation
        + tokens * hidden * 8  # q, k, v, context, residual streams, layer-norm outputs
    ) * element
    return MemoryEstimate(weights, int(activations * ACTIVATION_SAFETY), load_peak)


def gpu_memory_readers(device: str) -> tuple[Callable[[], float], Callable[[], float]]:
    """(allocated, reserved) byte counters of a CUDA device, for the metrics."""
    import torch

    return (lambda: float(torch.cuda.memory_allocated(device)), lambda: float(torch.cuda.memory_reserved(device)))


def available_bytes(device: str) -> int | None:
    """Memory a new version could use now: free device memory, or host RAM (within a cgroup limit)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        # Blocks torch has cached but not handed out are reusable by the new version.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    return host_available_bytes()


def host_available_bytes(meminfo: Path = MEMINFO, cgroup: Path = CGROUP) -> int | None:
    available: int | None = None
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        return None
    # In a container /proc/meminfo shows the host; the cgroup v2 limit is what the OOM killer enforces.
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((cgroup / "memory.current").read_text().strip())
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    return available


def check_fits(need: MemoryEstimate, device: str, probe: MemoryProbe = available_bytes) -> str | None:
    """None if it fits (or memory cannot be measured), else why not, for people."""
    free = probe(device)
    if free is None:
        log.warning("cannot measure free memory on %s: swapping without a memory check", device)
        return None
    if need.total_bytes <= free:
        return None
    mib = 1 << 20
    return (
        f"loading it beside the active version needs about {need.total_bytes / mib:.0f} MiB on {device} "
        f"(weights {need.weights_bytes / mib:.0f} MiB + warm-up activations {need.activation_bytes / mib:.0f} MiB "
        f"+ {FIXED_OVERHEAD / mib:.0f} MiB overhead) but only {free / mib:.0f} MiB is free: lower "
        "SENTIMENT_MAX_BATCH_TOKENS, free memory, or restart the service on the new version"
    )
