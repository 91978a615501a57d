"""The canary gate: run a version's canary set through the exact serving path before it serves.

Exact path: the version's own serving tokenizer, precision and batch layout (packed or padded), and the
batching engine itself (a private Batcher with the service's policy, every example submitted as its own
request, so batches mix lengths as live traffic does). The answers are judged against the fp32
probabilities recorded at publish (inference/canary.py has the rule and the tolerance).

Runs at start-up (after warm-up, before the service reports ready: failure -> `sentiment-serve` exits 2),
before a swap activates (failure -> 422 `canary_failed`, the old version keeps serving) and before a
shadow candidate starts scoring. A version published without a canary (before they existed) is served
with a warning; its status is `missing` in /v1/models and `sentiment_canary_status`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from app.quality.metrics import QualityMetrics
from inference.canary import CanaryReport, judge, tolerance
from inference.scores import softmax
from store.quality import read_canary

if TYPE_CHECKING:
    from inference.classifier import TextClassifier

log = logging.getLogger("app.quality")

CANARY_TIMEOUT_S = 300.0  # a canary of a few hundred short texts takes well under a second; a hung device does not


class CanaryRefused(Exception):
    """The version failed its canary and the gate is enforced."""

    def __init__(self, report: CanaryReport) -> None:
        super().__init__(report.reason)
        self.report = report


async def run_canary(
    classifier: TextClassifier, policy: BatchPolicy, set_threads: Callable[[int], None] | None
) -> CanaryReport:
    """The canary's verdict for `classifier` as configured (not counted, not enforced)."""
    loaded = classifier.loaded
    src = loaded.source
    canary = read_canary(src.path, src.manifest, src.labels)
    if canary is None:
        return CanaryReport(
            "missing", src.version, "published without a canary set (before canaries existed); not checked"
        )
    limit = loaded.max_length
    usable = [e for e in canary.examples if e.tokens <= limit]
    skipped = len(canary.examples) - len(usable)
    if not usable:
        reason = f"every canary example is longer than max_length {limit}; not checked"
        return CanaryReport("skipped", src.version, reason, skipped=skipped)
    precision = loaded.precision.parity if loaded.precision is not None else None
    packing = loaded.execution.parity if loaded.execution is not None else None
    tol = tolerance(canary.margin, loaded.dtype, loaded.packed, precision, packing)
    started = time.perf_counter()
    texts = [e.text for e in usable]
    logits, tokens = await _through_the_engine(classifier, policy, texts, set_threads)
    served = softmax(logits, src.temperature)
    reference = np.asarray([e.probabilities for e in usable], dtype=np.float64)
    report = judge(src.version, texts, reference, served, [e.tokens for e in usable], tokens, tol, skipped)
    return dataclasses.replace(report, seconds=time.perf_counter() - started)


async def _through_the_engine(
    classifier: TextClassifier, policy: BatchPolicy, texts: list[str], set_threads: Callable[[int], None] | None
) -> tuple[np.ndarray, list[int]]:
    policy = dataclasses.replace(policy, queue_capacity=max(policy.queue_capacity, len(texts)))
    batcher = Batcher(classifier, policy, None, set_threads)  # no metrics: canary inputs are not traffic
    await batcher.start()
    try:
        deadline = time.monotonic() + CANARY_TIMEOUT_S
        tickets = await asyncio.gather(*(batcher.submit([text], deadline) for text in texts))
        logits = await asyncio.gather(*(batcher.result(ticket) for ticket in tickets))
    finally:
        await batcher.stop()
    return np.concatenate(logits), [ticket.lengths[0] for ticket in tickets]


async def canary_gate(
    classifier: TextClassifier,
    policy: BatchPolicy,
    stage: str,
    metrics: QualityMetrics,
    enforce: bool,
    set_threads: Callable[[int], None] | None = None,
) -> CanaryReport:
    """Run, count and log the canary; CanaryRefused when it fails and `enforce` is on."""
    version = classifier.loaded.source.version
    try:
        report = await run_canary(classifier, policy, set_threads)
    except Exception as exc:  # the canary could not even run: the version is not fit to serve
        log.error("canary of version %d could not run", version, exc_info=exc)
        report = CanaryReport("failed", version, f"the canary could not run ({type(exc).__name__}: {exc})")
    metrics.canary_runs.labels(stage=stage, outcome=report.status).inc()
    if report.status == "passed":
        log.info("canary (%s) of version %d passed: %s in %.2fs", stage, version, report.reason, report.seconds)
    elif report.status in ("missing", "skipped"):
        log.warning("canary (%s) of version %d %s: %s", stage, version, report.status, report.reason)
    else:
        worst = f"; worst example {report.worst}" if report.worst else ""
        action = "refusing it" if enforce else "serving it anyway (SENTIMENT_CANARY_GATE=warn)"
        log.error("canary (%s) of version %d FAILED, %s: %s%s", stage, version, action, report.reason, worst)
        if enforce:
            raise CanaryRefused(report)
    return report
