"""The one place that decides how a precision is run: weights, activations, the forward callable.

Extending precisions (an `auto` choice, int8, parity checks) means adding a branch here; callers
only ever see `forward(input_ids, attention_mask) -> float32 numpy logits [n, labels]`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from app.core.config import Dtype
from app.model.loader import ModelLoadError

Forward = Callable[[torch.Tensor, torch.Tensor], np.ndarray]

_TORCH_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def prepare_forward(model: torch.nn.Module, device: str, dtype: Dtype) -> Forward:
    on_gpu = device.startswith("cuda")
    if dtype == "fp16" and not on_gpu:
        raise ModelLoadError("dtype fp16 needs a CUDA device; on CPU use bf16 or fp32 (--dtype)")
    model.eval()
    if on_gpu:
        # Half-precision weights on GPU: half the memory and tensor-core matmuls.
        model.to(device=device, dtype=_TORCH_DTYPES[dtype])
        autocast_dtype = None
    else:
        # On CPU keep fp32 weights; bf16 runs as autocast so layer norms and softmax stay fp32.
        model.to(device="cpu", dtype=torch.float32)
        autocast_dtype = torch.bfloat16 if dtype == "bf16" else None

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> np.ndarray:
        autocast = (
            torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.float().cpu().numpy()

    return forward


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError)


def release_cached_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
