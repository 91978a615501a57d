"""The quality files of a version directory: the canary set and the reference distributions (stdlib only).

Both are written at publish (training/quality.py) and read by the service (app/quality/): the canary
gates start-up and swaps, the reference is what drift is measured against. Versions published before
these files existed have neither and still serve (the gate is skipped with a warning). A file that is
present must be well-formed: a broken one makes the version unservable, so `sentiment-train` cannot
publish one (the store checks it before the commit point) and the service never half-trusts one.

canary.jsonl, one example per line (docs/model-format.md):
    {"text": "...", "label": "positive", "tokens": 23, "probabilities": {"negative": 0.03, "positive": 0.97}}
reference.json: predicted-label shares, confidence and input-length bins (edges + shares), the share of
low-confidence answers at several thresholds, and the dev accuracy.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.jsonl import parse_object

CANARY_FILE = "canary.jsonl"
REFERENCE_FILE = "reference.json"
REFERENCE_FORMAT = 1
# Added to the recorded parity of the serving precision/layout to form the canary's |Δp| tolerance
# (inference/canary.py): covers kernel differences between the publishing and the serving host.
DEFAULT_CANARY_MARGIN = 0.02
_PROB_SUM_SLACK = 1e-3
_MAX_REPORTED = 5


@dataclass(frozen=True)
class CanaryExample:
    text: str
    label: str  # the true (dev) label
    tokens: int  # serving-tokenizer length at publish
    probabilities: tuple[float, ...]  # fp32, temperature-calibrated, in the model's label order


@dataclass(frozen=True)
class CanarySet:
    examples: tuple[CanaryExample, ...]
    margin: float


@dataclass(frozen=True)
class Bins:
    """Value v falls in bin i when edges[i] < v <= edges[i+1]; below the first edge: bin 0, above the last: the last."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]


def bin_of(value: float, edges: Sequence[float]) -> int:
    """The bin of `value` (the Bins rule); app/quality/drift.py applies the same rule with numpy."""
    return min(max(bisect.bisect_left(edges, value) - 1, 0), len(edges) - 2)


@dataclass(frozen=True)
class Reference:
    examples: int
    predicted_label_shares: tuple[float, ...]  # in the model's label order
    confidence: Bins
    length: Bins
    low_confidence: tuple[tuple[float, float], ...]  # (threshold, share of dev answers below it)
    accuracy: float | None

    def low_confidence_share(self, threshold: float) -> float | None:
        """The dev share below `threshold`, linearly interpolated between recorded thresholds."""
        points = self.low_confidence
        if not points or threshold < points[0][0] or threshold > points[-1][0]:
            return None
        for (t0, s0), (t1, s1) in itertools.pairwise(points):
            if t0 <= threshold <= t1:
                return s0 if t1 == t0 else s0 + (s1 - s0) * (threshold - t0) / (t1 - t0)
        return points[-1][1]


# ---- writing (training/quality.py) --------------------------------------------------------------
def canary_text(examples: list[dict[str, Any]]) -> str:
    """canary.jsonl from example dicts (text, label, tokens, probabilities by label name)."""
    return "".join(json.dumps(e, ensure_ascii=False, allow_nan=False) + "\n" for e in examples)


def reference_text(reference: dict[str, Any]) -> str:
    return json.dumps({"format_version": REFERENCE_FORMAT, **reference}, indent=2, allow_nan=False) + "\n"


# ---- reading and validating ---------------------------------------------------------------------
def _probabilities(value: Any, labels: list[str]) -> tuple[float, ...] | str:
    if not isinstance(value, dict) or sorted(value) != sorted(labels):
        return f"'probabilities' must map exactly the labels {labels}"
    probs = [value[label] for label in labels]
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p) for p in probs):
        return "'probabilities' must be finite numbers"
    if any(p < 0 or p > 1 for p in probs) or abs(sum(probs) - 1.0) > _PROB_SUM_SLACK:
        return f"'probabilities' must lie in [0, 1] and sum to 1 (sum {sum(probs):.6f})"
    return tuple(float(p) for p in probs)


def _example(line: str, labels: list[str]) -> CanaryExample | str:
    row = parse_object(line)
    if isinstance(row, str):
        return row
    text, label, tokens = row.get("text"), row.get("label"), row.get("tokens")
    if not isinstance(text, str) or not text.strip():
        return "'text' must be a non-empty string"
    if label not in labels:
        return f"'label' {label!r} is not one of {labels}"
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        return f"'tokens' must be a positive integer, got {tokens!r}"
    probs = _probabilities(row.get("probabilities"), labels)
    if isinstance(probs, str):
        return probs
    return CanaryExample(text, label, tokens, probs)


def parse_canary(text: str, labels: list[str], margin: float = DEFAULT_CANARY_MARGIN) -> tuple[CanarySet, list[str]]:
    """The examples that parse, and one problem per line that does not (`canary.jsonl: line N: ...`)."""
    examples: list[CanaryExample] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parsed = _example(line, labels)
        if isinstance(parsed, str):
            problems.append(f"{CANARY_FILE}: line {number}: {parsed}")
        else:
            examples.append(parsed)
    if not examples and not problems:
        problems.append(f"{CANARY_FILE}: holds no examples")
    return CanarySet(tuple(examples), margin), problems


def _margin(manifest: dict[str, Any]) -> float | str:
    quality = manifest.get("quality")
    entry = quality.get("canary") if isinstance(quality, dict) else None
    margin = entry.get("margin", DEFAULT_CANARY_MARGIN) if isinstance(entry, dict) else DEFAULT_CANARY_MARGIN
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
        return f"manifest.json: quality.canary.margin must be a number in [0, 1), got {margin!r}"
    return float(margin)


def _bins(value: Any, name: str) -> Bins | str:
    if not isinstance(value, dict):
        return f"{name} must be an object with 'edges' and 'shares'"
    edges, shares = value.get("edges"), value.get("shares")
    numbers = [*(edges or []), *(shares or [])] if isinstance(edges, list) and isinstance(shares, list) else None
    if not numbers or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
        return f"{name}: 'edges' and 'shares' must be lists of numbers"
    if len(edges) < 2 or len(shares) != len(edges) - 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        return f"{name}: needs >= 2 increasing edges and one share per bin"
    if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > _PROB_SUM_SLACK:
        return f"{name}: shares must be >= 0 and sum to 1"
    return Bins(tuple(float(e) for e in edges), tuple(float(s) for s in shares))


def parse_reference(text: str, labels: list[str]) -> Reference | str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{REFERENCE_FILE}: not JSON ({exc.msg})"
    if not isinstance(data, dict) or data.get("format_version") != REFERENCE_FORMAT:
        return f"{REFERENCE_FILE}: not a format_version {REFERENCE_FORMAT} reference"
    shares = _probabilities(data.get("predicted_label_shares"), labels)
    if isinstance(shares, str):
        return f"{REFERENCE_FILE}: predicted_label_shares: {shares.replace('probabilities', 'shares')}"
    confidence, length = _bins(data.get("confidence"), "confidence"), _bins(data.get("length"), "length")
    for bins in (confidence, length):
        if isinstance(bins, str):
            return f"{REFERENCE_FILE}: {bins}"
    low = data.get("low_confidence") or {}
    thresholds, low_shares = low.get("thresholds", []), low.get("shares", [])
    if not isinstance(thresholds, list) or not isinstance(low_shares, list) or len(thresholds) != len(low_shares):
        return f"{REFERENCE_FILE}: low_confidence needs as many thresholds as shares"
    accuracy = data.get("accuracy")
    examples = data.get("examples")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        return f"{REFERENCE_FILE}: 'examples' must be a positive integer"
    assert not isinstance(confidence, str) and not isinstance(length, str)
    return Reference(
        examples=examples,
        predicted_label_shares=shares,
        confidence=confidence,
        length=length,
        low_confidence=tuple((float(t), float(s)) for t, s in zip(thresholds, low_shares, strict=True)),
        accuracy=float(accuracy) if isinstance(accuracy, int | float) and not isinstance(accuracy, bool) else None,
    )


def quality_problems(path: Path, manifest: dict[str, Any], labels: list[str] | None) -> list[str]:
    """Servable rule (store/servable.py): quality files that exist must be well-formed."""
    if labels is None:
        return []
    problems: list[str] = []
    canary_path, reference_path = path / CANARY_FILE, path / REFERENCE_FILE
    if canary_path.is_file():
        margin = _margin(manifest)
        if isinstance(margin, str):
            problems.append(margin)
        found = parse_canary(canary_path.read_text(encoding="utf-8", errors="replace"), labels)[1]
        problems += found[:_MAX_REPORTED] + ([f"... and {len(found) - _MAX_REPORTED} more"] if found[5:] else [])
    if reference_path.is_file():
        parsed = parse_reference(reference_path.read_text(encoding="utf-8", errors="replace"), labels)
        if isinstance(parsed, str):
            problems.append(parsed)
    return problems


def read_canary(path: Path, manifest: dict[str, Any], labels: list[str]) -> CanarySet | None:
    """The version's canary set, or None when it was published without one. Call on a servable version."""
    canary_path = path / CANARY_FILE
    if not canary_path.is_file():
        return None
    margin = _margin(manifest)
    canary, problems = parse_canary(canary_path.read_text(encoding="utf-8"), labels, 0.0)
    if problems or isinstance(margin, str):
        raise ValueError("; ".join(problems or [str(margin)]))
    return CanarySet(canary.examples, margin)


def read_reference(path: Path, labels: list[str]) -> Reference | None:
    reference_path = path / REFERENCE_FILE
    if not reference_path.is_file():
        return None
    parsed = parse_reference(reference_path.read_text(encoding="utf-8"), labels)
    if isinstance(parsed, str):
        raise ValueError(parsed)
    return parsed
