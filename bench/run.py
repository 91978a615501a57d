"""`python -m bench.run --mode quick|full`: every contender over the same workload, in one run.

Steps: pick the model (bench/model.py), build the workload (bench/workload.py), measure the ceiling
in its own process (bench/ceiling.py), start the service, the peer and the naive server (each its
own process group on 127.0.0.1, same model files, same torch threads, same OpenMP wait policy),
then for every request size and concurrency drive each contender in turn with the load generator
(bench/loadgen.py, its own process). Contenders alternate at every concurrency level so that
drift in a shared machine's load hits them alike; the load average is recorded with every
measurement. Results: results.json, results.md and results.png in the run folder; the last line
printed is the path of results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.contenders.launch import Server, free_port, http_get, python_module
from bench.cpugroup import open_group
from bench.machine import describe_cpu
from bench.model import BenchModel, newest_published, publish_stand_in
from bench.workload import WorkloadSpec, build_texts, request_bodies, write_texts

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plan:
    pool_size: int
    runs: dict[int, dict[int, int]]  # request size -> concurrency -> requests
    ceiling_batch_sizes: tuple[int, ...] = (8, 16, 32, 64)
    ceiling_budgets: tuple[int, ...] = (1024, 2048, 4096)  # padded tokens per batch
    ceiling_repeats: int = 1
    timeout_s: float = 300.0  # per request, client side
    warmup: int = 8  # untimed requests before each measurement (at most one per connection)
    max_seconds: float = 0.0  # per load point and contender: stop sending after this long (0: never)


PLANS = {
    # The three points the targets are defined at; a few minutes on an idle 2-core machine.
    # Every loaded point sends 12-16 rounds of requests: fewer let the ramp-up and the drain weigh on the
    # rate (32-text c=16 with 3 rounds: 0.83 of the ceiling; with 12 rounds, same code and machine: 1.02).
    # The 60 s cap stops slow contenders (the peer at 32 texts) instead of waiting minutes for them.
    "quick": Plan(512, {1: {1: 24, 64: 1024}, 32: {16: 192}}, (16, 64), (1024, 2048), 1, 300.0, 4, 60.0),
    # Slow contenders at high concurrency would take many minutes per point on two cores: each
    # point stops sending after 60 s and abandons answers still missing 60 s later, restarting that
    # contender so its backlog does not leak into the next point.
    "full": Plan(
        2048,
        {1: {1: 64, 16: 512, 64: 1024, 256: 2048}, 32: {1: 8, 16: 192, 64: 128, 256: 512}},
        (8, 16, 32, 64),
        (512, 1024, 2048, 4096),
        1,
        900.0,
        max_seconds=60.0,
    ),
    # bench/gpu.py: BERT-base in bf16 on one GPU, 32-text requests at the two load points.
    "gpu": Plan(4096, {32: {64: 256, 256: 512}}, (64, 128, 256, 512), (8192, 16384, 32768, 65536), 2, 600.0),
}

# LitServe's max_batch_size counts requests: (max_batch_size, batch_timeout_s) per request size,
# chosen by `python -m bench.tune_peer` (it writes its sweep to bench/results/tune-peer): small batches win
# because LitServe pads a whole batch to its longest text; of settings within the sweep's noise
# the shorter timeout, which costs a lone client least.
PEER_CONFIG: dict[int, tuple[int, float]] = {1: (4, 0.001), 32: (2, 0.005)}


@dataclass
class Context:
    args: argparse.Namespace
    plan: Plan
    out: Path
    model: BenchModel
    env: dict[str, str]
    bodies: dict[int, Path] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None  # joins the CPU cgroup, when there is one
    texts: int = 0  # distinct texts the requests cycle through
    notes: dict[str, str] = field(default_factory=dict)  # contenders that did not run, and why


def _module(ctx: Context, module: str, *args: str) -> list[str]:
    return python_module(module, *args, nice=ctx.args.nice)


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _pick_model(args: argparse.Namespace, out: Path) -> BenchModel:
    if args.stand_in is None:
        found = newest_published(args.models_dir, args.name)
        if found is not None:
            return found
    kind = args.stand_in or "minilm"
    return publish_stand_in(out / "models", args.name, kind, args.tokenizer_dir, args.device)


def _prepare_workload(ctx: Context) -> None:
    spec = WorkloadSpec(pool_size=ctx.plan.pool_size, seed=ctx.args.seed)
    if ctx.args.texts is not None:
        texts = json.loads(ctx.args.texts.read_text(encoding="utf-8"))["texts"][: ctx.plan.pool_size]
    else:
        texts = build_texts(spec)
    write_texts(ctx.out / "texts.json", spec, texts)
    ctx.texts = len(texts)
    for size, by_conc in ctx.plan.runs.items():
        count = max(by_conc.values()) + ctx.plan.warmup
        path = ctx.out / f"bodies-{size}.jsonl"
        path.write_bytes(b"\n".join(request_bodies(texts, size, count)))
        ctx.bodies[size] = path


def _single_count(plan: Plan) -> int:
    return plan.runs.get(1, {}).get(1, 32)


def ceiling_server(ctx: Context) -> Server:
    """The ceiling process: sweeps the batchings at start, then answers /pass next to each run."""
    a = ctx.args
    port = free_port()
    cmd = _module(
        ctx,
        "bench.ceiling",
        *("--models-dir", str(ctx.model.models_dir), "--name", ctx.model.name, "--version", str(ctx.model.version)),
        *("--device", a.device, "--threads", str(a.threads), "--texts", str(ctx.out / "texts.json")),
        *("--batch-sizes", ",".join(map(str, ctx.plan.ceiling_batch_sizes))),
        *("--token-budgets", ",".join(map(str, ctx.plan.ceiling_budgets))),
        *("--repeats", str(ctx.plan.ceiling_repeats)),
        # The service computes this many batches side by side on a CPU (Settings.resolved_inference_workers);
        # the ceiling times that too and keeps whichever is faster.
        *("--streams", str(2 if not a.device.startswith("cuda") and a.threads >= 2 else 1)),
        *("--single", str(_single_count(ctx.plan)), "--out", str(ctx.out / "ceiling.json")),
        *(("--dtype", a.dtype) if a.dtype else ()),
        *("--serve-port", str(port)),
    )
    ctx.commands["ceiling"] = cmd
    return Server("ceiling", cmd, port, "/health", ctx.out / "logs" / "ceiling.log", ctx.env, ctx.preexec)


def openvino_reference(ctx: Context) -> dict[str, Any]:
    """The reference row (bench/openvino_ref.py): the model in OpenVINO, measured once before the load points."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return {"skipped": "openvino is not installed (pip install openvino)"}
    out = ctx.out / "openvino.json"
    cmd = _module(
        ctx,
        "bench.openvino_ref",
        *("--models-dir", str(ctx.model.models_dir), "--name", ctx.model.name, "--version", str(ctx.model.version)),
        *("--texts", str(ctx.out / "texts.json"), "--threads", str(ctx.args.threads), "--out", str(out)),
        *("--token-budgets", ",".join(map(str, ctx.plan.ceiling_budgets))),
    )
    ctx.commands["openvino"] = cmd
    log = ctx.out / "logs" / "openvino.log"
    with log.open("wb") as fh:
        done = subprocess.run(cmd, env=_env(ctx), stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=1800)
    if done.returncode != 0:
        return {"failed": f"exit {done.returncode}; see {log}"}
    return {**json.loads(out.read_text()), "loadavg": _loadavg()}


def ceiling_pass(ctx: Context, server: Server, single: bool) -> dict[str, Any]:
    before = _loadavg()
    status, body = http_get(server.port, "/pass" + (f"?single={_single_count(ctx.plan)}" if single else ""), 900)
    if status != 200:
        raise RuntimeError(f"ceiling pass answered {status}: {body[:200]!r}")
    return {**json.loads(body), "errors": 0, "loadavg": before}


def _env(ctx: Context) -> dict[str, str]:
    root = str(ROOT)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **ctx.env, "PYTHONPATH": path}


def service_server(ctx: Context, dtype: str | None) -> Server:
    a, m = ctx.args, ctx.model
    port = free_port()
    max_inputs = max(size * conc for size, by_conc in ctx.plan.runs.items() for conc in by_conc)
    cmd = _module(
        ctx,
        "app.cli",
        *("--models-dir", str(m.models_dir), "--name", m.name, "--model-version", str(m.version)),
        *("--host", "127.0.0.1", "--port", str(port), "--device", a.device, "--torch-threads", str(a.threads)),
        # A closed loop keeps concurrency x size inputs outstanding: admit them all and let none time
        # out, so the run measures throughput and latency rather than load shedding.
        *("--queue-capacity", str(max(2048, max_inputs)), "--request-timeout-s", str(ctx.plan.timeout_s)),
        *("--log-level", "warning"),
        *(("--dtype", dtype) if dtype else ()),
        *a.service_arg,
    )
    ctx.commands["service"] = cmd
    return Server("service", cmd, port, "/health", ctx.out / "logs" / "service.log", ctx.env, ctx.preexec)


def naive_server(ctx: Context, dtype: str) -> Server:
    a = ctx.args
    port = free_port()
    cmd = _module(
        ctx,
        "bench.contenders.naive",
        *("--model-dir", str(ctx.model.path), "--port", str(port), "--device", a.device),
        *("--dtype", dtype, "--threads", str(a.threads)),
    )
    ctx.commands["naive"] = cmd
    return Server("naive", cmd, port, "/health", ctx.out / "logs" / "naive.log", ctx.env, ctx.preexec)


def peer_server(ctx: Context, dtype: str, size: int) -> Server:
    a = ctx.args
    port = free_port()
    batch, timeout = ctx.args.peer_config.get(size, PEER_CONFIG.get(size, (4, 0.005)))
    cmd = _module(
        ctx,
        "bench.contenders.peer",
        *("--model-dir", str(ctx.model.path), "--port", str(port), "--device", a.device),
        *("--dtype", dtype, "--threads", str(a.threads)),
        *("--max-batch-size", str(batch), "--batch-timeout", str(timeout), "--timeout", str(ctx.plan.timeout_s)),
    )
    ctx.commands[f"peer_{size}"] = cmd
    return Server("peer", cmd, port, "/health", ctx.out / "logs" / f"peer-{size}.log", ctx.env, ctx.preexec)


def infinity_server(ctx: Context, dtype: str) -> Server | None:
    """Infinity on the same model files, threads and precision (None when its venv is not installed)."""
    from bench.contenders import infinity

    exe = infinity.executable(ctx.args.infinity_venv)
    if exe is None:
        return None
    a = ctx.args
    port = free_port()
    home = ctx.out / "infinity-home"
    home.mkdir(exist_ok=True)
    cmd = infinity.command(exe, ctx.model.path, port, dtype, a.device)
    cmd = ["nice", "-n", str(a.nice), *cmd] if a.nice else cmd
    ctx.commands["infinity"] = cmd
    env = {**ctx.env, **infinity.environment(a.threads, home)}
    return Server("infinity", cmd, port, "/health", ctx.out / "logs" / "infinity.log", env, ctx.preexec)


def drive(ctx: Context, server: Server, size: int, conc: int, requests: int) -> dict[str, Any]:
    raw = ctx.out / "raw" / f"{server.name}-{size}x{conc}.json"
    cmd = _module(
        ctx,
        "bench.loadgen",
        *("--api", "infinity" if server.name == "infinity" else "service"),
        *("--port", str(server.port), "--bodies", str(ctx.bodies[size]), "--concurrency", str(conc)),
        *("--requests", str(requests), "--warmup", str(ctx.plan.warmup), "--timeout", str(ctx.plan.timeout_s)),
        *("--max-seconds", str(ctx.plan.max_seconds)),
        *("--out", str(raw)),
    )
    ctx.commands["loadgen"] = cmd
    before = _loadavg()
    cpu_before = server.cpu_seconds()
    threads_before = server.thread_cpu_seconds() if server.name == "service" else {}
    done = subprocess.run(cmd, env=_env(ctx), capture_output=True, text=True, check=False, preexec_fn=ctx.preexec)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed against {server.name}: {done.stderr[-2000:]}")
    result = json.loads(raw.read_text())
    result["loadavg"] = before
    # CPU the server spent (every process and thread of it, warm-up requests included): on a
    # shared machine sentences per CPU-second stays comparable when wall-clock rates drift.
    cpu = server.cpu_seconds() - cpu_before
    result["server_cpu_s"] = round(cpu, 3)
    texts = result["ok_texts"] + result.get("warmup_texts", 0)
    result["sentences_per_cpu_s"] = round(texts / cpu, 2) if cpu > 0 else None
    if threads_before:
        # The request path's own cost: CPU outside forward passes per request (warm-up included).
        after = server.thread_cpu_seconds()
        spent = {role: after[role] - threads_before.get(role, 0.0) for role in after}
        served = result["requests"] + min(ctx.plan.warmup, conc)
        result["cpu_ms_per_request"] = {role: round(1000 * s / served, 3) for role, s in spent.items()}
    return result


def scrape_tokens(port: int) -> tuple[float, float]:
    status, body = http_get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"service /metrics answered {status}")
    values = {"sentiment_padded_tokens_total": 0.0, "sentiment_real_tokens_total": 0.0}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values["sentiment_padded_tokens_total"], values["sentiment_real_tokens_total"]


def measure(
    ctx: Context, dtype: str | None, ceiling: Server | None
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """Every contender at every (size, concurrency); returns runs, padding and the service's dtype.

    At each load point the ceiling repeats its best pass first, then each contender runs; everything
    not being measured is paused, so it neither takes CPU nor drifts out of step. The service's
    padding ratio is read from its /metrics around each of its runs (warm-up requests included).
    """
    wanted = ctx.args.contenders
    runs: dict[str, Any] = {}
    padding: dict[str, list[float]] = {}  # size -> [padded, real] tokens
    served_dtype = dtype
    common: dict[str, Server] = {"ceiling": ceiling} if ceiling is not None else {}
    try:
        if "service" in wanted:
            common["service"] = service_server(ctx, ctx.args.dtype).start()
            _, body = http_get(common["service"].port, "/health")
            served_dtype = json.loads(body).get("dtype", served_dtype)
        peer_dtype = served_dtype or dtype or "fp32"
        if "naive" in wanted:
            common["naive"] = naive_server(ctx, peer_dtype).start()
        if "infinity" in wanted:
            server = infinity_server(ctx, peer_dtype)
            if server is None:
                ctx.notes["infinity"] = "not run: not installed (bash bench/contenders/install-infinity.sh)"
            else:
                common["infinity"] = server.start(timeout_s=900)  # it warms up before it listens
        for size, by_conc in ctx.plan.runs.items():
            servers = dict(common)
            if "peer" in wanted:
                servers["peer"] = peer_server(ctx, peer_dtype, size).start()
            try:
                for server in servers.values():
                    server.pause()
                for conc, requests in by_conc.items():
                    for name in ("ceiling", *report.CONTENDERS):
                        if name not in servers:
                            continue
                        servers[name].resume()
                        tokens_before = scrape_tokens(servers[name].port) if name == "service" else None
                        try:
                            if name == "ceiling":
                                result = ceiling_pass(ctx, servers[name], single=(size, conc) == (1, 1))
                            else:
                                result = drive(ctx, servers[name], size, conc, requests)
                                if result.get("abandoned") and name != "service":
                                    # The service drops requests whose client left; the others would
                                    # keep computing them into the next point, so they restart.
                                    servers[name].restart()
                            if tokens_before is not None:
                                after = scrape_tokens(servers[name].port)
                                padded, real = after[0] - tokens_before[0], after[1] - tokens_before[1]
                                result["padding_ratio"] = round(padded / real, 3) if real else None
                                by_size = padding.setdefault(str(size), [0.0, 0.0])
                                by_size[0] += padded
                                by_size[1] += real
                        finally:
                            servers[name].pause()
                        runs.setdefault(str(size), {}).setdefault(name, {})[str(conc)] = result
                        print(f"{size:>3} texts c={conc:<4} {name:<8} {_line(result)}", file=sys.stderr)
            finally:
                if "peer" in servers:
                    servers["peer"].stop()
    finally:
        for server in common.values():
            server.stop()
    totals = [sum(v[0] for v in padding.values()), sum(v[1] for v in padding.values())]
    ratios: dict[str, Any] = {size: round(p / r, 3) if r else None for size, (p, r) in padding.items()}
    ratios["overall"] = round(totals[0] / totals[1], 3) if totals[1] else None
    return runs, ratios, served_dtype


def _line(r: dict[str, Any]) -> str:
    if "p50_ms" not in r:  # a ceiling pass
        return f"{r['sentences_per_s']:8.1f} sent/s  (forward only)  load {r['loadavg'][0]}"
    return (
        f"{r['sentences_per_s']:8.1f} sent/s  p50 {r['p50_ms']:8.1f}  p99 {r['p99_ms']:8.1f} ms  "
        f"errors {r['errors']}  load {r['loadavg'][0]}"
    )


def _parse_peer(values: list[str]) -> dict[int, tuple[int, float]]:
    out: dict[int, tuple[int, float]] = {}
    for value in values:
        size, _, rest = value.partition("=")
        batch, _, timeout = rest.partition(",")
        out[int(size)] = (int(batch), float(timeout))
    return out


def _parse_runs(value: str) -> dict[int, dict[int, int]]:
    """'1:1x24,64x192;32:16x24' -> {1: {1: 24, 64: 192}, 32: {16: 24}}."""
    runs: dict[int, dict[int, int]] = {}
    for part in value.split(";"):
        size, _, levels = part.partition(":")
        runs[int(size)] = {int(c): int(n) for c, _, n in (lv.partition("x") for lv in levels.split(","))}
    return runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(PLANS), default="quick")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="sentiment")
    parser.add_argument(
        "--stand-in",
        choices=["minilm", "bert-base", "tiny"],
        default=None,
        help="publish this stand-in model for the run instead of serving the newest published one",
    )
    parser.add_argument("--tokenizer-dir", type=Path, default=None, help="tokenizer for a stand-in (default: MiniLM)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="service precision (default: the service's own default)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads, all")
    parser.add_argument(
        "--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY for every contender ('' leaves it unset)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run every contender, the ceiling and the client under `nice -n N` (negative: priority over "
        "other work on a shared machine; needs root)",
    )
    parser.add_argument(
        "--cpu-shares",
        type=int,
        default=0,
        help="run every process in one CPU cgroup with this cpu.shares (1024 = one ordinary process); "
        "offers each contender the same share of a shared machine whatever its thread count (bench/cpugroup.py)",
    )
    parser.add_argument(
        "--contenders",
        default="ceiling,openvino,service,peer,infinity,naive",
        type=lambda s: s.split(","),
        help="what to run (openvino: the reference row, not a contender)",
    )
    parser.add_argument("--runs", type=_parse_runs, default=None, help="override: '1:1x24,64x192;32:16x24'")
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--texts", type=Path, default=None, help="use these texts (JSON with 'texts') instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer", dest="peer_config", action="append", default=[], help="SIZE=MAX_BATCH,TIMEOUT_S")
    parser.add_argument("--service-arg", action="append", default=[], help="extra sentiment-serve flag (repeat)")
    parser.add_argument(
        "--infinity-venv",
        type=Path,
        default=ROOT / ".venv-infinity",
        help="the Infinity peer's venv (bench/contenders/install-infinity.sh); skipped when absent",
    )
    parser.add_argument("--out-dir", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.peer_config = _parse_peer(args.peer_config)
    plan = PLANS[args.mode]
    if args.runs is not None or args.pool_size is not None:
        plan = dataclasses.replace(plan, pool_size=args.pool_size or plan.pool_size, runs=args.runs or plan.runs)
    started = dt.datetime.now().astimezone()
    out = args.out_dir or ROOT / "bench" / "results" / f"{started:%Y%m%d-%H%M%S}-{args.mode}"
    for sub in ("logs", "raw"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    env = {"OMP_WAIT_POLICY": args.omp_wait_policy} if args.omp_wait_policy else {}
    model = _pick_model(args, out)
    group, group_note = open_group(args.cpu_shares)
    ctx = Context(args, plan, out, model, env, preexec=group.joiner() if group else None)
    _prepare_workload(ctx)
    load_before = _loadavg()
    clock = time.perf_counter()
    ceiling_proc = ceiling_server(ctx) if "ceiling" in args.contenders else None
    try:
        ceiling = None
        if ceiling_proc is not None:
            ceiling_proc.start(timeout_s=3600)  # the batching sweep runs before it answers /health
            ceiling = {**json.loads((out / "ceiling.json").read_text()), "loadavg": _loadavg()}
            ceiling_proc.pause()
        dtype = ceiling["dtype"] if ceiling is not None else args.dtype
        reference = openvino_reference(ctx) if "openvino" in args.contenders else None
        runs, padding, served_dtype = measure(ctx, dtype, ceiling_proc)
    finally:
        if ceiling_proc is not None:
            ceiling_proc.stop()
        if group is not None:
            group.close()
    if ceiling is not None and served_dtype is not None and served_dtype != ceiling["dtype"]:
        raise RuntimeError(f"the service runs {served_dtype} but the ceiling ran {ceiling['dtype']}")

    ratios = report.ratios(runs, ceiling)
    results = {
        "meta": {
            "mode": args.mode,
            "started_at": started.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - clock, 1),
            "model": model.describe(),
            "device": args.device,
            "dtype": served_dtype or dtype,
            "dtype_requested": args.dtype or "service default",
            "threads": args.threads,
            "omp_wait_policy": args.omp_wait_policy or "unset",
            "nice": args.nice,
            "cpu_group": group_note,
            "cpus": os.cpu_count(),
            "cpu": describe_cpu(),
            "loadavg_before": load_before,
            "loadavg_after": _loadavg(),
            "workload": {"texts": ctx.texts, "runs": {str(s): r for s, r in plan.runs.items()}},
            "peer_config": {str(s): args.peer_config.get(s, PEER_CONFIG.get(s)) for s in plan.runs},
            "commands": {k: " ".join(v) for k, v in ctx.commands.items()},
            "notes": ctx.notes,
        },
        "ceiling": ceiling,
        "reference_openvino": reference,
        "runs": runs,
        "padding": padding,
        "ratios": ratios,
        "cpu_ratios": report.cpu_ratios(runs, ceiling),
        "targets": report.targets(ratios, runs, ceiling, padding, args.device),
    }
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    (out / "results.md").write_text(report.markdown(results), encoding="utf-8")
    report.plot(results, out / "results.png")
    print((out / "results.md").read_text(), file=sys.stderr)
    print(json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
