from __future__ import annotations

import json
import math

from training.report import finite


def test_non_finite_numbers_become_null_so_the_json_stays_strict() -> None:
    logged = {"loss": math.nan, "history": [{"grad_norm": math.inf}, {"grad_norm": 1.5}], "step": (1, -math.inf)}
    cleaned = finite(logged)
    assert cleaned == {"loss": None, "history": [{"grad_norm": None}, {"grad_norm": 1.5}], "step": [1, None]}
    json.dumps(cleaned, allow_nan=False)
