"""What machine a result was measured on: the CPU model and flags (`lscpu`), since the two CPU kinds this
project runs on differ 2.7x in model speed, and a number without its CPU means little."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

# The flags that decide which kernels run (and so the speed): named in every result.
KEY_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2", "avx_vnni")


def describe_cpu() -> dict[str, Any]:
    """lscpu's model name, counts and flags (all of them, and the kernel-relevant ones on their own)."""
    fields: dict[str, str] = {}
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    if not flags:  # no lscpu: /proc/cpuinfo says the same
        from inference.hardware import cpu_features

        cpu = cpu_features()
        fields.setdefault("Model name", cpu.model_name)
        flags = sorted(cpu.flags)
    return {
        "model_name": fields.get("Model name", "unknown"),
        "cpus": fields.get("CPU(s)"),
        "threads_per_core": fields.get("Thread(s) per core"),
        "key_flags": [f for f in KEY_FLAGS if f in flags],
        "flags": flags,
    }


def short(cpu: dict[str, Any]) -> str:
    return f"{cpu['model_name']} ({', '.join(cpu['key_flags']) or 'no avx512/amx'})"
