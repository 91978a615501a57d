"""How to turn a version into a classifier: the knobs the inference layer takes (torch-free).

The service builds these from its Settings (app/config.py); scripts and benchmarks build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# A precision the model runs in; `auto` resolves to one of them per host and model (inference/selection.py).
Dtype = Literal["fp32", "bf16", "fp16", "int8"]
DtypeChoice = Literal["auto", "fp32", "bf16", "fp16", "int8"]
# Padding-free execution (inference/packing.py): auto = packed when the model supports it and its recorded
# packed-vs-padded parity passes the agreement bound; on = packed unless a record says it disagrees.
PackingChoice = Literal["auto", "on", "off"]
REDUCED_PRECISIONS: tuple[Dtype, ...] = ("bf16", "fp16", "int8")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    dtype: DtypeChoice = "auto"
    min_precision_agreement: float = 0.99
    packing: PackingChoice = "auto"
    max_length: int | None = None  # default: the model's own limit
    torch_threads: int | None = None  # None: leave torch's setting
    # The largest batch the caller will run, so a model whose single input cannot fit is refused at load.
    max_batch_tokens: int | None = None

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
