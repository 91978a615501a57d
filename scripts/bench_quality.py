"""What model-quality monitoring costs: the per-request hook, and shadow scoring's effect on the active version.

    python scripts/bench_quality.py observe              # µs per /predict request added by the quality hook
    python scripts/bench_quality.py shadow [--seconds 15] # real sentiment-serve, MiniLM-size, with and without a shadow

`observe` times QualityMonitor.observe (prediction counts, histograms, drift window, the record feedback
refers to, the shadow's offer) on requests of 1, 4, 32 and 256 texts. `shadow` publishes two MiniLM-size
versions (the embedded base with a fresh head: the speed of a fine-tuned one), starts `sentiment-serve`
on them and runs closed-loop load (bench/loadgen.py) in alternating phases: no shadow, a shadow scoring
every request (share 1.0) capped at shadow_max_busy, `--rounds` times; it prints throughput, latency and
the server's CPU time per phase, and the shadow's share of it. Name the CPU next to any number quoted from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _observer(monitor: Any, source: Any, probs: Any, lengths: list[int], texts: list[str]) -> Any:
    ids = iter(range(10**9))
    return lambda: monitor.observe(f"r{next(ids)}", source, probs, lengths, texts)


def bench_observe() -> dict[str, Any]:
    import numpy as np
    from prometheus_client import CollectorRegistry

    from app.config import Settings
    from app.quality.metrics import QualityMetrics
    from app.quality.monitor import QualityMonitor
    from inference.source import ModelSource

    source = ModelSource("sentiment", 1, Path("/nonexistent"), {}, ["negative", "positive"], 1.0)
    out: dict[str, Any] = {"cpu": cpu_name()}
    for label, overrides in (
        ("metrics + feedback record", {}),
        ("metrics only (feedback_records=0)", {"feedback_records": 0}),
    ):
        monitor = QualityMonitor(Settings(**overrides), QualityMetrics(CollectorRegistry()))
        monitor.metrics.versions[1] = monitor._new_stats(source)
        rng = np.random.default_rng(0)
        row: dict[str, float] = {}
        for n in (1, 4, 32, 256):
            probs = rng.dirichlet([1, 1], n)
            lengths = rng.integers(5, 60, n).tolist()
            texts = ["x"] * n
            calls = 20000 if n < 32 else 5000
            seconds = min(timeit.repeat(_observer(monitor, source, probs, lengths, texts), number=calls, repeat=5))
            row[f"{n} texts"] = round(seconds / calls * 1e6, 2)
        out[label] = row
    return out


def _publish_two(models: Path) -> None:
    from bench.model import publish_stand_in

    publish_stand_in(models, "sentiment")
    publish_stand_in(models, "sentiment")


def _bodies(path: Path, count: int = 256) -> None:
    import random

    from training.config import preset
    from training.data import load_data

    texts = load_data(preset("default")).splits["dev"].texts
    rng = random.Random(0)
    with path.open("w") as fh:
        for _ in range(count):
            fh.write(json.dumps({"texts": rng.sample(texts, rng.randint(1, 4))}) + "\n")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(port: int, bodies: Path, seconds: float, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--bodies", str(bodies)]
    cmd += ["--concurrency", "8", "--requests", "100000", "--warmup", "8", "--max-seconds", str(seconds)]
    subprocess.run([*cmd, "--out", str(out)], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.read_text())


def bench_shadow(seconds: float, max_busy: float, rounds: int) -> dict[str, Any]:
    import httpx

    from tests.helpers.net import free_port
    from tests.helpers.serve import serve_command, wait_healthy

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        root = Path(tmp)
        _publish_two(root / "models")
        _bodies(root / "bodies.jsonl")
        port = free_port()
        log = (root / "serve.log").open("wb")
        argv = [*serve_command(), "--models-dir", str(root / "models"), "--model-version", "1", "--port", str(port)]
        argv += ["--device", "cpu", "--dtype", "fp32", "--max-length", "64", "--shadow-max-busy", str(max_busy)]
        env = {**os.environ, "SENTIMENT_ADMIN_API_KEY": "bench", "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        phases: list[dict[str, Any]] = []
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, root / "serve.log", timeout=300)
            admin = {"Authorization": "Bearer bench"}
            url = f"http://127.0.0.1:{port}/v1/models/shadow"
            for k, shadow in enumerate((False, True) * rounds):
                if shadow:
                    response = httpx.post(url, json={"version": 2, "share": 1.0}, headers=admin, timeout=300)
                    response.raise_for_status()
                    busy0 = response.json()["shadow"]["busy_seconds"]
                cpu0 = _cpu_seconds(process.pid)
                result = _load(port, root / "bodies.jsonl", seconds, root / f"phase{k}.json")
                cpu = _cpu_seconds(process.pid) - cpu0
                phase = {
                    "shadow": shadow,
                    **{key: result[key] for key in ("sentences_per_s", "p50_ms", "p99_ms", "errors")},
                }
                phase["server_cpu_s"] = round(cpu, 2)
                phase["server_cpu_ms_per_text"] = round(1000 * cpu / max(1, result["ok_texts"]), 3)
                if shadow:
                    status = httpx.get(url, timeout=30).json()["shadow"]
                    phase["shadow_inputs"] = status["inputs"]
                    busy = status["busy_seconds"] - busy0
                    phase["shadow_share_of_server_cpu"] = round(busy / cpu, 3) if cpu else None
                    phase["active_cpu_ms_per_text"] = round(1000 * (cpu - busy) / max(1, result["ok_texts"]), 3)
                    httpx.delete(url, headers=admin, timeout=60).raise_for_status()
                else:
                    phase["active_cpu_ms_per_text"] = phase["server_cpu_ms_per_text"]
                phases.append(phase)
                print(json.dumps(phase), file=sys.stderr, flush=True)
                time.sleep(2)
        finally:
            process.terminate()
            process.wait(60)

    def mean(key: str, shadow: bool) -> float:
        values = [p[key] for p in phases if p["shadow"] is shadow]
        return sum(values) / len(values)

    return {
        "cpu": cpu_name(),
        "model": "all-MiniLM-L6-v2 size, fp32, max_length 64, 2 torch threads",
        "load": "8 closed-loop clients, 1-4 dev texts per request",
        "shadow_max_busy": max_busy,
        "phases": phases,
        "throughput_loss_with_shadow": round(1 - mean("sentences_per_s", True) / mean("sentences_per_s", False), 4),
        "cpu_per_text_increase_with_shadow": round(
            mean("server_cpu_ms_per_text", True) / mean("server_cpu_ms_per_text", False) - 1, 4
        ),
        "active_cpu_per_text_increase_with_shadow": round(
            mean("active_cpu_ms_per_text", True) / mean("active_cpu_ms_per_text", False) - 1, 4
        ),
        "load_average_after": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["observe", "shadow"])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each load phase (shadow)")
    parser.add_argument("--max-busy", type=float, default=0.05, help="shadow_max_busy for the shadow phases")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of phases (without, with the shadow)")
    args = parser.parse_args()
    result = bench_observe() if args.what == "observe" else bench_shadow(args.seconds, args.max_busy, args.rounds)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
