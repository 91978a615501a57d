"""The second peer: Infinity (PyPI `infinity-emb`), its own CPU engine and length-sorting batcher.

Infinity serves the published version directory as it is (a `save_pretrained` classifier) at
`POST /classify {"input": [...], "model": ...}`; it needs its own venv (bench/contenders/install-infinity.sh).
Same model files, same torch threads (Infinity never sets torch's thread count, so OMP/MKL variables
bound it) and the same precision as the service. Its batcher: each text queued with its length as
priority, up to 8 batches' worth taken whenever the model is idle, sorted by length, cut into batches of
`--batch-size`, each padded to its longest text. Its answers are a plain softmax (no calibration
temperature): a throughput peer, not a drop-in replacement. Telemetry is switched off; it binds 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-infinity"
INFINITY_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "int8"}
# Infinity's own default; its feeder sorts 8 batches' worth by length before cutting them.
BATCH_SIZE = 32


def executable(venv: Path = DEFAULT_VENV) -> Path | None:
    path = venv / "bin" / "infinity_emb"
    return path if path.exists() else None


def command(exe: Path, model_dir: Path, port: int, dtype: str, device: str, batch_size: int = BATCH_SIZE) -> list[str]:
    return [
        str(exe),
        "v2",
        *("--model-id", str(model_dir), "--served-model-name", "sentiment"),
        *("--engine", "torch", "--device", "cpu" if not device.startswith("cuda") else "cuda"),
        *("--dtype", INFINITY_DTYPES[dtype], "--batch-size", str(batch_size)),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]


def environment(threads: int, home: Path) -> dict[str, str]:
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        # Infinity reports anonymous usage to a public host unless told not to: never from here.
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "INFINITY_HOME": str(home),
    }
