"""The one place that decides how a precision is run: weights, activations, the forward callable.

Which precision to run is decided in inference/selection.py; this module only knows how. Callers
only ever see `forward(batch) -> float32 numpy logits [n, labels]`, for a padded batch
(inference/padding.py) or a packed one (inference/packing.py): logits leave every path as fp32, so
softmax and temperature scaling are computed the same way for all precisions and both layouts.
`prepare_forward` takes ownership of the model (it may cast or quantise it in place).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from inference.errors import ModelLoadError
from inference.options import Dtype
from inference.packing import PackedBatch, enable_packing, packed_logits
from inference.padding import PaddedBatch

Forward = Callable[[PaddedBatch | PackedBatch], np.ndarray]
CpuBf16 = Literal["autocast", "weights"]

_TORCH_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Measured with bench/precision.py (docs/performance.md, "Precision"): on an AVX512-BF16 CPU bf16
# weights agree with fp32 as often as autocast does, run as fast or faster (autocast re-casts every
# fp32 weight on every forward pass) and halve the weight memory.
DEFAULT_CPU_BF16: CpuBf16 = "weights"


def method(device: str, dtype: Dtype, cpu_bf16: CpuBf16 = DEFAULT_CPU_BF16) -> str:
    """How `dtype` is run on `device`, in words (recorded with parity measurements and shown in /v1/models)."""
    if dtype == "fp32":
        return "fp32"
    if device.startswith("cuda") or dtype == "fp16":
        return f"{dtype} weights"
    if dtype == "int8":
        return "int8 dynamic quantisation of Linear layers (per-channel weights, per-batch activations)"
    return "bf16 weights" if cpu_bf16 == "weights" else "bf16 autocast over fp32 weights"


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of every nn.Linear, per output channel (weights int8, activations
    quantised per batch). Per-channel scales agree with fp32 more often than per-tensor ones at the
    same speed. Embeddings, LayerNorm and softmax stay fp32."""
    from torch.ao import quantization

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager dynamic path still works
        # in this torch and torchao is not a dependency.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantization.quantize_dynamic(
            model, {torch.nn.Linear: quantization.per_channel_dynamic_qconfig}, inplace=True
        )


def runnable_precisions(device: str, cuda_bf16: bool = True) -> list[Dtype]:
    """Reduced precisions this code can run on `device` (fp32 always runs): what parity is measured for."""
    if device.startswith("cuda"):
        return ["bf16", "fp16"] if cuda_bf16 else ["fp16"]
    return ["bf16", "int8"]


def unsupported(device: str, dtype: Dtype) -> str | None:
    """Why `dtype` cannot run on `device`, for people; None when it can."""
    if dtype == "fp16" and not device.startswith("cuda"):
        return "dtype fp16 needs a CUDA device; on CPU use auto, bf16, int8 or fp32 (--dtype)"
    if dtype == "int8" and device.startswith("cuda"):
        return "dtype int8 (dynamic quantisation) runs on the CPU only; on CUDA use auto, bf16 or fp16"
    return None


def prepare_forward(
    model: torch.nn.Module, device: str, dtype: Dtype, cpu_bf16: CpuBf16 = DEFAULT_CPU_BF16, packed: bool = False
) -> Forward:
    """The forward callable of `model` in `dtype` on `device`; with `packed`, it also takes packed batches
    (the caller has checked inference.packing.packing_problem)."""
    on_gpu = device.startswith("cuda")
    if (reason := unsupported(device, dtype)) is not None:
        raise ModelLoadError(reason)
    model.eval()
    if packed:
        enable_packing(model)
    autocast_dtype = None
    if on_gpu:
        # Half-precision weights on GPU: half the memory and tensor-core matmuls.
        model.to(device=device, dtype=_TORCH_DTYPES[dtype])
    elif dtype == "int8":
        model.to(device="cpu", dtype=torch.float32)
        quantize_int8(model)
    elif dtype == "bf16" and cpu_bf16 == "weights":
        model.to(device="cpu", dtype=torch.bfloat16)
    else:
        # fp32 weights; bf16 autocast keeps layer norms and softmax in fp32 (the alternative mode).
        model.to(device="cpu", dtype=torch.float32)
        autocast_dtype = torch.bfloat16 if dtype == "bf16" else None

    def forward(batch: PaddedBatch | PackedBatch) -> np.ndarray:
        autocast = (
            torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            if isinstance(batch, PackedBatch):
                logits = packed_logits(model, batch)
            else:
                logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        return logits.float().cpu().numpy()

    return forward


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError)


def release_cached_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
