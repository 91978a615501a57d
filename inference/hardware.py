"""What the host can compute fast: CPU instruction-set features, GPU bf16 support, a host fingerprint.

Stdlib-only at import time (torch is imported lazily). The fingerprint names "a machine whose numerics match this one":
parity measured on one fingerprint is trusted for every host with the same fingerprint.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# bf16 matmuls in hardware: AVX512-BF16 (Cooper Lake, Zen 4+) and AMX-BF16 (Sapphire Rapids+).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# int8 dot-product units that fbgemm/oneDNN use for dynamically quantised Linear layers.
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
# Flags that change which kernels run, hence the numbers a precision produces.
_KERNEL_FLAGS = NATIVE_BF16_FLAGS | INT8_DOT_FLAGS | {"avx2", "fma", "avx512f", "avx512bw", "avx512_fp16", "amx_tile"}
_X86 = {"x86_64", "amd64", "i686", "i386"}


@dataclass(frozen=True)
class CpuFeatures:
    arch: str
    model_name: str
    flags: frozenset[str]

    @property
    def is_x86(self) -> bool:
        return self.arch.lower() in _X86

    @property
    def native_bf16(self) -> bool:
        # Only x86 flags are known to map to torch's fast bf16 CPU kernels; elsewhere stay conservative.
        return self.is_x86 and bool(self.flags & NATIVE_BF16_FLAGS)

    @property
    def int8_dot_product(self) -> bool:
        return self.is_x86 and bool(self.flags & INT8_DOT_FLAGS)

    def describe(self) -> str:
        relevant = sorted(self.flags & (NATIVE_BF16_FLAGS | INT8_DOT_FLAGS))
        return f"{self.model_name or self.arch} ({', '.join(relevant) or 'no bf16/int8 dot-product flags'})"


def parse_cpuinfo(text: str, arch: str) -> CpuFeatures:
    """Features of the first processor listed in /proc/cpuinfo text (all cores of a host match)."""
    flags: frozenset[str] = frozenset()
    model_name = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
        elif key == "model name" and not model_name:
            model_name = value.strip()
    return CpuFeatures(arch=arch, model_name=model_name, flags=flags)


def cpu_features(cpuinfo: Path = CPUINFO) -> CpuFeatures:
    """This host's CPU; without /proc/cpuinfo (not Linux) no fast-path flag is claimed."""
    arch = platform.machine()
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuFeatures(arch=arch, model_name=platform.processor(), flags=frozenset())
    return parse_cpuinfo(text, arch)


def cuda_bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def host_fingerprint(device: str, cpu: CpuFeatures | None = None) -> str:
    """`cpu-<12 hex>` or `cuda-<12 hex>`: hardware and torch build that decide a precision's numerics.

    The torch version is part of it because kernel choices (oneDNN, fbgemm, cuBLAS) change between
    releases; an upgrade therefore asks for a fresh parity measurement rather than trusting an old one.
    """
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        identity = f"{torch.cuda.get_device_name(index)}|sm{major}{minor}|torch {torch.__version__}"
        kind = "cuda"
    else:
        cpu = cpu or cpu_features()
        flags = ",".join(sorted(cpu.flags & _KERNEL_FLAGS))
        identity = f"{cpu.arch}|{cpu.model_name}|{flags}|torch {torch.__version__}"
        kind = "cpu"
    return f"{kind}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
