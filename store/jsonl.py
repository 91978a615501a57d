"""One line of a JSON Lines file (canary sets, feedback records) as an object, or why it is not one."""

from __future__ import annotations

import json
from typing import Any


def parse_object(line: str) -> dict[str, Any] | str:
    """The JSON object on `line`, or the reason it is not one (for a row-numbered error message)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(row, dict):
        return "not a JSON object"
    return row
