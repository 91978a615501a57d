"""The peer contender: LitServe with its batching on, the same model and precision code.

The obvious LitServe implementation: `decode_request` takes the request's texts, LitServe gathers up
to `max_batch_size` requests (waiting at most `batch_timeout` seconds), `predict` tokenizes the
whole batch padded to its longest text and runs one forward pass through the service's own
precision code (`inference.precision.prepare_forward`), `unbatch` hands each request its rows.
`max_batch_size` counts requests, so the harness sets it per request size (docs/performance.md
records the tuning that chose the values).

Run: `python -m bench.contenders.peer --model-dir DIR --port P --threads 2 --dtype bf16
--max-batch-size 64 --batch-timeout 0.005`.
"""

# No `from __future__ import annotations` here: LitServe reads decode_request's annotation at run
# time to build the endpoint, and a string annotation would turn the body into a query parameter.
import argparse
import sys
from pathlib import Path
from typing import Any

import litserve as ls


class SentimentAPI(ls.LitAPI):
    def __init__(self, model_dir: Path, dtype: str, threads: int, max_batch_size: int, batch_timeout: float) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.model_dir = model_dir
        self.dtype = dtype
        self.threads = threads

    def setup(self, device: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from inference.precision import prepare_forward

        torch.set_num_threads(self.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, local_files_only=True)
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        self.max_length = min(int(self.tokenizer.model_max_length), int(model.config.max_position_embeddings))
        self.forward = prepare_forward(model, device, self.dtype)  # type: ignore[arg-type]
        self.device = device

    def decode_request(self, request: dict[str, Any]) -> list[str]:
        return request["texts"]

    def batch(self, inputs: list[list[str]]) -> list[list[str]]:
        return inputs

    def predict(self, x: list[list[str]]) -> list[list[dict[str, Any]]]:
        import numpy as np

        from inference.padding import PaddedBatch

        flat = [text for texts in x for text in texts]
        enc = self.tokenizer(flat, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = PaddedBatch(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))
        logits = self.forward(batch).astype(np.float64)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        best = probs.argmax(axis=1)
        rows = [{"label": self.labels[k], "score": float(p[k])} for p, k in zip(probs, best, strict=True)]
        out, start = [], 0
        for texts in x:
            out.append(rows[start : start + len(texts)])
            start += len(texts)
        return out

    def unbatch(self, output: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return output

    def encode_response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": output}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LitServe peer with batching")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, required=True)
    parser.add_argument("--batch-timeout", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    api = SentimentAPI(args.model_dir, args.dtype, args.threads, args.max_batch_size, args.batch_timeout)
    accelerator = "cuda" if args.device.startswith("cuda") else "cpu"
    server = ls.LitServer(api, accelerator=accelerator, devices=1, workers_per_device=1, timeout=args.timeout)
    server.run(host=args.host, port=args.port, num_api_servers=1, generate_client_file=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
