"""The safetensors header, read without the safetensors package: tensor names, dtypes, shapes, offsets.

Enough to check a weights file is whole before anything loads it, and to estimate the memory a
version needs (inference/memory.py) in milliseconds.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "model.safetensors"
_MAX_HEADER = 100 << 20


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header (without `__metadata__`); ValueError naming what is wrong with the file."""
    size_on_disk = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name}: {size_on_disk} bytes is too short for a safetensors file")
        (size,) = struct.unpack("<Q", prefix)
        if size > _MAX_HEADER or 8 + size > size_on_disk:
            raise ValueError(f"{path.name}: implausible safetensors header of {size} bytes")
        try:
            header = json.loads(fh.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path.name}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}: safetensors header is not a JSON object")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    data_bytes = size_on_disk - 8 - size
    for name, info in tensors.items():
        try:
            start, end = info["data_offsets"]
            shape = [int(d) for d in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path.name}: tensor {name!r} has no valid shape/data_offsets") from None
        if not 0 <= start <= end <= data_bytes or any(d < 0 for d in shape):
            raise ValueError(f"{path.name}: tensor {name!r} lies outside the file (truncated or corrupted)")
    return tensors


def element_count(path: Path) -> int:
    """Number of weight elements, from the header alone."""
    return sum(math.prod(t["shape"]) for t in read_header(path).values())
