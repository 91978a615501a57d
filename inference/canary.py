"""The canary rule: is what this host serves the model that was published? (torch-free)

At publish, a small canary set is stored with the fp32 probabilities the publishing host computed
(store/quality.py). Before a version serves, the service runs it through its exact serving path and
compares (app/quality/canary.py). Checksums prove the files are the published ones; this proves the
*answers* are: a different tokenizer build, a broken kernel or a precision that misbehaves here all
pass checksums and fail this.

Tolerance for the largest absolute probability difference |Δp| from the recorded fp32 probabilities:

    tolerance = margin                                   (recorded at publish, default 0.02)
              + max_prob_diff of the serving precision   (its parity record vs fp32; 0 for fp32)
              + max_prob_diff of packed vs padded         (its packing record, only when batches run packed)

The records are the ones the precision and layout were chosen by (the host sidecar over the manifest),
measured on the whole dev split, so they bound what the canary (a subset of dev) may legitimately show;
the margin covers kernel differences between the publishing and the serving host. An unmeasured
precision or layout (an explicit --dtype / --packing on without a record) adds nothing: it must then
reproduce fp32 within the margin alone, and the report says so.

Labels: every example whose fp32 top-two gap exceeds twice the tolerance must keep its label (within
the tolerance its label cannot legitimately change); `required_agreement` is the share of such examples.
Token counts: every example must tokenize to the length recorded at publish (the tokenizer is deterministic,
so any difference means a different tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

CanaryStatus = Literal["passed", "failed", "missing", "skipped"]


@dataclass(frozen=True)
class Tolerance:
    max_prob_diff: float
    margin: float
    precision_part: float = 0.0
    packing_part: float = 0.0
    notes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "max_prob_diff": round(self.max_prob_diff, 6),
            "margin": self.margin,
            "precision_parity": round(self.precision_part, 6),
            "packing_parity": round(self.packing_part, 6),
            "notes": list(self.notes),
        }


def tolerance(
    margin: float,
    dtype: str,
    packed: bool,
    precision_record: dict[str, Any] | None,
    packing_record: dict[str, Any] | None,
) -> Tolerance:
    """The |Δp| bound for serving `dtype` (packed or padded), from the records that admitted them."""
    notes: list[str] = []
    precision_part = packing_part = 0.0
    if dtype != "fp32":
        if precision_record is not None:
            precision_part = float(precision_record["max_prob_diff"])
        else:
            notes.append(f"{dtype}: no parity record, so no allowance beyond the margin")
    if packed:
        if packing_record is not None:
            packing_part = float(packing_record["max_prob_diff"])
        else:
            notes.append("packed: no packing parity record, so no allowance beyond the margin")
    return Tolerance(margin + precision_part + packing_part, margin, precision_part, packing_part, tuple(notes))


@dataclass(frozen=True)
class CanaryReport:
    status: CanaryStatus
    version: int
    reason: str
    examples: int = 0
    skipped: int = 0  # examples longer than this service's token limit (truncation would change them)
    agreement: float | None = None
    required_agreement: float | None = None
    max_prob_diff: float | None = None
    token_mismatches: int = 0
    tolerance: Tolerance | None = None
    worst: dict[str, Any] | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.status == "failed"

    def describe(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "reason": self.reason,
            "examples": self.examples,
            "skipped": self.skipped,
            "agreement": self.agreement,
            "required_agreement": self.required_agreement,
            "max_prob_diff": self.max_prob_diff,
            "token_mismatches": self.token_mismatches,
            "tolerance": self.tolerance.describe() if self.tolerance else None,
            "worst": self.worst,
            "seconds": round(self.seconds, 3),
        }


def judge(
    version: int,
    texts: list[str],
    reference: np.ndarray,
    served: np.ndarray,
    recorded_tokens: list[int],
    served_tokens: list[int],
    tol: Tolerance,
    skipped: int = 0,
) -> CanaryReport:
    """Compare served probabilities [n, labels] with the recorded fp32 ones under `tol`."""
    n = len(texts)
    diff = np.abs(served - reference)
    per_example = diff.max(axis=1)
    worst_i = int(per_example.argmax())
    max_diff = float(per_example[worst_i])
    ref_label, got_label = reference.argmax(axis=1), served.argmax(axis=1)
    ordered = np.sort(reference, axis=1)
    decided = (ordered[:, -1] - ordered[:, -2]) > 2 * tol.max_prob_diff
    flipped = decided & (ref_label != got_label)
    agreement = float((ref_label == got_label).mean())
    mismatches = sum(a != b for a, b in zip(recorded_tokens, served_tokens, strict=True))
    problems = []
    if mismatches:
        problems.append(f"{mismatches} of {n} examples tokenize to a different length than at publish (tokenizer)")
    if flipped.any():
        problems.append(f"{int(flipped.sum())} clearly decided examples changed label")
    if max_diff > tol.max_prob_diff:
        problems.append(f"max |Δp| {max_diff:.4f} exceeds the tolerance {tol.max_prob_diff:.4f}")
    worst = {
        "index": worst_i,
        "text": texts[worst_i][:120],
        "recorded": [round(float(p), 6) for p in reference[worst_i]],
        "served": [round(float(p), 6) for p in served[worst_i]],
    }
    status: CanaryStatus = "failed" if problems else "passed"
    reason = "; ".join(problems) if problems else f"{n} examples within |Δp| {tol.max_prob_diff:.4f}"
    return CanaryReport(
        status=status,
        version=version,
        reason=reason,
        examples=n,
        skipped=skipped,
        agreement=round(agreement, 6),
        required_agreement=round(float(decided.mean()), 6),
        max_prob_diff=round(max_diff, 6),
        token_mismatches=mismatches,
        tolerance=tol,
        worst=worst,
    )
