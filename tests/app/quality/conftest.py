"""A store for the canary gate: intact versions, and versions that pass every checksum but answer differently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.models import alter_weights, build_spread_bert, publish_tiny, stop_lowercasing

LABELS = ["negative", "positive"]
INTACT, OTHER, ALTERED_WEIGHTS, OTHER_TOKENIZER, NO_CANARY = 1, 2, 3, 4, 5


@pytest.fixture(scope="session")
def canary_store(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    root = tmp_path_factory.mktemp("canary-models")
    for seed in (INTACT, OTHER, ALTERED_WEIGHTS, OTHER_TOKENIZER, NO_CANARY):
        model = build_spread_bert(LABELS, seed=seed)
        publish_tiny(root, tokenizer, model=model, temperature=1.3, quality=seed != NO_CANARY)
    alter_weights(root / "sentiment" / str(ALTERED_WEIGHTS))
    stop_lowercasing(root / "sentiment" / str(OTHER_TOKENIZER))
    return root
