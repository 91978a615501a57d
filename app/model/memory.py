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
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("app.model.memory")

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")
# Caching-allocator fragmentation, temporaries we do not model (masks, residual copies), the tokenizer.
ACTIVATION_SAFETY = 2.0
FIXED_OVERHEAD = 64 << 20

_ELEMENT_BYTES = {"F64": 8, "F32": 4, "I64": 8, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# device -> free bytes now (None: unknown, the check is skipped). Tests substitute a fake.
MemoryProbe = Callable[[str], int | None]


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + FIXED_OVERHEAD


def safetensors_elements(path: Path) -> int:
    """Number of weight elements, from the header alone (8-byte length + JSON)."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        if size > 100 << 20:
            raise ValueError(f"{path}: implausible safetensors header of {size} bytes")
        header = json.loads(fh.read(size))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def estimate(
    path: Path, device: str, dtype: str, max_batch_tokens: int, max_batch_size: int, max_length: int | None
) -> MemoryEstimate:
    """Bytes a version at `path` needs on `device`: weights + activations of the full-budget warm-up batch."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    on_gpu = device.startswith("cuda")
    # On CUDA the weights are cast to bf16/fp16; on CPU they stay fp32 (bf16 is autocast, int8 quantises
    # from the fp32 copy), so fp32 is the honest peak there.
    element = 2 if on_gpu and dtype in ("bf16", "fp16") else 4
    weights = safetensors_elements(path / "model.safetensors") * element
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
    return MemoryEstimate(weights, int(activations * ACTIVATION_SAFETY))


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
