"""The fixed workload: real Rotten Tomatoes snippets mixed with longer texts, cut into requests.

Every contender sees the same request bodies in the same order, so differences come from the
servers, not the inputs. Most texts are single snippets (a few to ~70 tokens); 10% are 2 to 20
snippets joined, the count drawn log-uniformly so every length scale up to the model's 512-token
limit is equally represented (the longest get truncated, as real traffic with long reviews would).
Although few, the long texts carry about half of the tokens.
"""

from __future__ import annotations

import bz2
import csv
import json
import math
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from training.data import builtin_data_path

_REVIEW_CATEGORIES = {"fresh", "rotten"}  # "plot" rows are synopses, not reviews
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class WorkloadSpec:
    pool_size: int = 2048  # distinct texts; requests cycle through them
    long_fraction: float = 0.10  # share of texts made of several joined snippets
    max_join: int = 20  # ~27 tokens a snippet: 20 joined pass the 512-token limit
    seed: int = 0


def load_snippets() -> list[str]:
    """Unique review snippets of the built-in data, in file order."""
    seen: set[str] = set()
    snippets: list[str] = []
    with bz2.open(builtin_data_path(), "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = _SPACES.sub(" ", (row.get("text") or "")).strip()
            key = text.lower()
            if row.get("category") in _REVIEW_CATEGORIES and text and key not in seen:
                seen.add(key)
                snippets.append(text)
    return snippets


def build_texts(spec: WorkloadSpec, snippets: list[str] | None = None) -> list[str]:
    """`spec.pool_size` texts, deterministic for a given seed."""
    pool = snippets if snippets is not None else load_snippets()
    if not pool:
        raise ValueError("no snippets to build a workload from")
    rng = random.Random(spec.seed)
    texts = []
    for _ in range(spec.pool_size):
        if rng.random() < spec.long_fraction:
            count = round(math.exp(rng.uniform(math.log(2), math.log(spec.max_join))))
            texts.append(" ".join(rng.choice(pool) for _ in range(count)))
        else:
            texts.append(rng.choice(pool))
    return texts


def request_texts(texts: list[str], size: int, index: int) -> list[str]:
    """Texts of request `index` when every request carries `size` texts (cycling through the pool)."""
    start = index * size
    return [texts[(start + k) % len(texts)] for k in range(size)]


def request_bodies(texts: list[str], size: int, count: int) -> Iterator[bytes]:
    """JSON bodies `{"texts": [...]}`; every contender accepts this shape."""
    for index in range(count):
        yield json.dumps({"texts": request_texts(texts, size, index)}, ensure_ascii=False).encode()


def write_texts(path: Path, spec: WorkloadSpec, texts: list[str]) -> None:
    path.write_text(json.dumps({"spec": asdict(spec), "texts": texts}, ensure_ascii=False), encoding="utf-8")


def read_texts(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = data["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError(f"{path}: 'texts' must be a list of non-empty strings")
    return texts
