"""The naive contender: FastAPI + `transformers.pipeline("text-classification")` per request.

What most tutorials ship: a plain `def` endpoint (FastAPI runs it in its thread pool) calling the
pipeline on the request's texts, default uvicorn settings. The only additions keep the comparison
about serving rather than set-up: the same model files, the same torch thread count, the same
precision as the service, truncation at the model limit, and the same response shape.

Run: `python -m bench.contenders.naive --model-dir DIR --port P --threads 2 --dtype bf16`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any


def precision_context(model: Any, device: str, dtype: str) -> Callable[[], AbstractContextManager[Any]]:
    """Put `model` in `dtype` as the service does (inference/precision.py); returns the context each
    pipeline call runs in. The pipeline keeps the model object, so this adapts it in place."""
    import torch

    from inference import precision

    on_gpu = device.startswith("cuda")
    if dtype == "fp32":
        return contextlib.nullcontext
    if dtype in ("bf16", "fp16") and on_gpu:
        model.to(dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)
        return contextlib.nullcontext
    if dtype == "bf16" and getattr(precision, "DEFAULT_CPU_BF16", "autocast") == "weights":
        model.to(dtype=torch.bfloat16)
        return contextlib.nullcontext
    if dtype == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # fp32 weights, bf16 matmuls
    if dtype == "int8" and not on_gpu:
        precision.quantize_int8(model)
        return contextlib.nullcontext
    raise SystemExit(f"naive contender: unsupported dtype {dtype!r} on {device}")


def build_app(model_dir: Path, device: str, dtype: str, threads: int) -> Any:
    import torch
    from fastapi import FastAPI
    from transformers import pipeline

    torch.set_num_threads(threads)
    classifier = pipeline("text-classification", model=str(model_dir), device=device)
    context = precision_context(classifier.model, device, dtype)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode(), context():
            outputs = classifier(body["texts"], truncation=True)
        return {"predictions": [{"label": o["label"], "score": float(o["score"])} for o in outputs]}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="naive FastAPI + pipeline server")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(build_app(args.model_dir, args.device, args.dtype, args.threads), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
