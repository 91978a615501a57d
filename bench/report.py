"""Ratios, targets, the markdown table and the plot, all from one run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SERVICE = "service"
CONTENDERS = ("service", "peer", "infinity", "naive")
PEERS = ("naive", "peer", "infinity")

# (name, request size, concurrency, metric, threshold); the CPU targets (packed execution, issue 13).
TARGETS: list[tuple[str, int, int, str, float]] = [
    ("32 texts @ c=16: service / ceiling", 32, 16, "ceiling", 0.95),
    ("1 text @ c=64: service / ceiling", 1, 64, "ceiling", 0.85),
    ("1 text @ c=64: service / naive", 1, 64, "naive", 3.0),
    ("1 text @ c=64: service / peer", 1, 64, "peer", 2.0),
    ("1 text @ c=64: service / infinity (the stronger peer)", 1, 64, "infinity", 2.0),
]
PADDING_LIMIT = 1.15
LONE_CLIENT_LIMIT = 1.3
# The GPU goals (bench/gpu.py): sentences/s at these 32-text concurrencies, and the share of the GPU
# ceiling at c=64.
GPU_POINTS = (64, 256)
GPU_RATE = 20_000.0
GPU_CEILING_SHARE = 0.8


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def ratios(runs: dict[str, dict[str, dict[str, dict[str, Any]]]], ceiling: dict[str, Any] | None) -> dict[str, Any]:
    """service ÷ ceiling, ÷ naive, ÷ peer (sentences/s) for every request size and concurrency measured."""
    return _ratios(runs, ceiling, "sentences_per_s")


def cpu_ratios(runs: dict[str, Any], ceiling: dict[str, Any] | None) -> dict[str, Any]:
    """The same ratios in sentences per CPU-second of the server: robust to a shared machine's load."""
    return _ratios(runs, ceiling, "sentences_per_cpu_s")


def ceiling_at(runs: dict[str, Any], ceiling: dict[str, Any] | None, size: str, conc: str) -> dict[str, Any] | None:
    """The ceiling pass measured next to this load point, else the start-up sweep's best."""
    return runs.get(size, {}).get("ceiling", {}).get(conc, ceiling)


def _ratios(runs: dict[str, Any], ceiling: dict[str, Any] | None, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"service_over_ceiling": {}, **{f"service_over_{p}": {} for p in PEERS}}
    for size, by_contender in runs.items():
        service = by_contender.get(SERVICE, {})
        for conc, result in service.items():
            ours = result.get(key)
            limit = ceiling_at(runs, ceiling, size, conc)
            if limit is not None:
                out["service_over_ceiling"].setdefault(size, {})[conc] = _ratio(ours, limit.get(key))
            for other in PEERS:
                theirs = by_contender.get(other, {}).get(conc)
                if theirs is not None:
                    out[f"service_over_{other}"].setdefault(size, {})[conc] = _ratio(ours, theirs.get(key))
    return out


def targets(
    table: dict[str, Any],
    runs: dict[str, dict[str, dict[str, dict[str, Any]]]],
    ceiling: dict[str, Any] | None,
    padding: dict[str, Any],
    device: str = "cpu",
) -> list[dict[str, Any]]:
    if device.startswith("cuda"):
        return gpu_targets(table, runs)
    checks: list[dict[str, Any]] = []
    for name, size, conc, other, threshold in TARGETS:
        value = table.get(f"service_over_{other}", {}).get(str(size), {}).get(str(conc))
        checks.append(_check(name, value, ">=", threshold))
    # Per request size, so well-packed 32-text requests cannot hide ragged 1-text batches.
    for size in sorted((k for k in padding if k != "overall"), key=int):
        name = f"padded / real tokens (service, {size}-text requests)"
        checks.append(_check(name, padding[size], "<=", PADDING_LIMIT))
    lone = runs.get("1", {}).get(SERVICE, {}).get("1")
    limit = ceiling_at(runs, ceiling, "1", "1")
    single = (limit or {}).get("single_text_ms") or (ceiling or {}).get("single_text_ms")
    if lone is not None and single is not None:
        value = _ratio(lone["p99_ms"], single["p99"])
        checks.append(_check("1 text @ c=1: service p99 / ceiling single-text p99", value, "<=", LONE_CLIENT_LIMIT))
    return checks


def gpu_targets(table: dict[str, Any], runs: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for conc in GPU_POINTS:
        run = runs.get("32", {}).get(SERVICE, {}).get(str(conc))
        rate = None if run is None else run["sentences_per_s"]
        checks.append(_check(f"32 texts @ c={conc}: service sentences/s", rate, ">=", GPU_RATE))
        share = table.get("service_over_ceiling", {}).get("32", {}).get(str(conc))
        checks.append(_check(f"32 texts @ c={conc}: service / ceiling", share, ">=", GPU_CEILING_SHARE))
    return checks


def _check(name: str, value: float | None, op: str, threshold: float) -> dict[str, Any]:
    met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
    return {"target": name, "value": value, "op": op, "threshold": threshold, "met": met}


def markdown(results: dict[str, Any]) -> str:
    meta, ceiling = results["meta"], results.get("ceiling")
    lines = [
        f"# Benchmark {meta['started_at']} ({meta['mode']})",
        "",
        f"Model: {meta['model']['origin']} ({meta['model']['path']}); device {meta['device']}, dtype "
        f"{meta['dtype']}, torch threads {meta['threads']}; load average before/after: "
        f"{meta['loadavg_before']} / {meta['loadavg_after']}.",
        "",
        f"CPU: {cpu_line(meta.get('cpu'))}.",
        "",
        *(f"Not run: {name} ({why})." for name, why in meta.get("notes", {}).items()),
    ]
    if ceiling is not None:
        lat = ceiling["single_text_ms"]
        lines += [
            f"Ceiling: {ceiling['sentences_per_s']:.1f} sentences/s ({ceiling['sentences_per_cpu_s']:.1f} per "
            f"CPU-second) with {ceiling['best_batching']} ({ceiling.get('best_layout', 'padded')}), padding "
            f"{ceiling['padding_ratio']} "
            f"({ceiling['unsorted']['batching']}: {ceiling['unsorted']['sentences_per_s']:.1f}); "
            f"single text p50 {lat['p50']} ms, p99 {lat['p99']} ms.",
            "",
        ]
    ref = results.get("reference_openvino")
    if ref and "sentences_per_s" in ref:
        share = f" = {ref['sentences_per_s'] / ceiling['sentences_per_s']:.2f} x the ceiling" if ceiling else ""
        lines += [
            f"Reference (not a contender): {ref['engine']} {ref['precision']}, {ref['best_batching']}: "
            f"{ref['sentences_per_s']:.1f} sentences/s{share} (labels agree with torch fp32: "
            f"{ref.get('label_agreement_with_torch_fp32')}).",
            "",
        ]
    elif ref:
        lines += [f"Reference (OpenVINO): {ref}", ""]
    for size, by_contender in results["runs"].items():
        lines += [
            f"## {size}-text requests",
            "",
            "| contender | concurrency | sentences/s | p50 ms | p95 ms | p99 ms | errors | sent./CPU-s | padding "
            "| load avg |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for contender, by_conc in by_contender.items():
            for conc, r in by_conc.items():
                if "p50_ms" not in r:  # a ceiling pass: forward only, no requests
                    lines.append(
                        f"| {contender} | {conc} | {r['sentences_per_s']:.1f} | | | | | "
                        f"{r.get('sentences_per_cpu_s')} | {r.get('padding_ratio', '')} | {r.get('loadavg', '')} |"
                    )
                    continue
                lines.append(
                    f"| {contender} | {conc} | {r['sentences_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                    f"{r['p99_ms']:.1f} | {r['errors']} | {r.get('sentences_per_cpu_s')} | "
                    f"{r.get('padding_ratio', '')} | {r.get('loadavg', '')} |"
                )
        pad = results["padding"].get(size)
        if pad is not None:
            lines.append(f"\nService padding ratio (padded / real tokens): {pad}.")
        lines.append("")
    for title, table in (
        ("Ratios (service ÷ other, sentences/s, same run)", results["ratios"]),
        ("Ratios per CPU-second of the server (load-robust view)", results.get("cpu_ratios", {})),
    ):
        lines += [f"## {title}", ""]
        for key, by_size in table.items():
            for size, by_conc in by_size.items():
                cells = ", ".join(f"c={c}: {v}" for c, v in by_conc.items())
                lines.append(f"- {key}, {size}-text: {cells}")
        lines.append("")
    lines += ["## Targets", "", "| target | value | goal | met |", "| --- | ---: | ---: | --- |"]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value']} | {t['op']} {t['threshold']} | {met} |")
    return "\n".join(lines) + "\n"


def cpu_line(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return "not recorded"
    return f"{cpu['model_name']}, {cpu.get('cpus')} CPUs, flags {' '.join(cpu['key_flags']) or '(no avx512/amx)'}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results["runs"])
    fig, axes = plt.subplots(2, len(sizes), figsize=(6 * len(sizes), 8), squeeze=False)
    ceiling = results.get("ceiling")
    for col, size in enumerate(sizes):
        thr, p99 = axes[0][col], axes[1][col]
        for contender, by_conc in results["runs"][size].items():
            concs = [int(c) for c in by_conc]
            style = {"color": "black", "linestyle": "--"} if contender == "ceiling" else {}
            thr.plot(concs, [r["sentences_per_s"] for r in by_conc.values()], marker="o", label=contender, **style)
            if contender != "ceiling":
                p99.plot(concs, [r["p99_ms"] for r in by_conc.values()], marker="o", label=contender)
        if ceiling is not None:
            p99.axhline(ceiling["single_text_ms"]["p99"], color="grey", linestyle=":", label="ceiling single-text p99")
        for ax in (thr, p99):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrency (closed loop)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        thr.set_title(f"{size}-text requests: throughput")
        thr.set_ylabel("sentences/s")
        p99.set_title(f"{size}-text requests: p99 latency")
        p99.set_ylabel("p99 ms")
        p99.set_yscale("log")
    fig.suptitle(f"{results['meta']['device']} {results['meta']['dtype']}, {results['meta']['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
