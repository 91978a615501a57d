"""`sentiment-train`: fine-tune and publish; the published directory is the last line on stdout.

One flag per TrainConfig field (so every knob of a preset can be overridden); exit status 0 on
success, 2 for bad flags, configuration or data (nothing is published), 1 for other failures.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from store.errors import StoreError
from training.config import PRESETS, ConfigError, TrainConfig, preset
from training.data import DataError

_TYPES: dict[str, Any] = {
    "str": str,
    "str | None": str,
    "int": int,
    "int | None": int,
    "float": float,
    "Path": Path,
    "Path | None": Path,
    "tuple[str, ...] | None": lambda s: tuple(part.strip() for part in s.split(",") if part.strip()),
}


def _program_version() -> str:
    try:
        return importlib.metadata.version("sentiment-service")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-train",
        description="Fine-tune a BERT-family encoder and publish it as <models-dir>/<name>/<version>. "
        "Defaults shown are those of the 'default' preset.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="starting point for every knob")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_program_version()}")
    defaults = PRESETS["default"]
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("cli") is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        # SUPPRESS: only flags the user typed override the preset.
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f.metadata["help"]}
        default = getattr(defaults, f.name)
        if default is not None and default != "":
            kwargs["help"] += f" (default: {','.join(default) if isinstance(default, tuple) else default})"
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if f.name == "data":  # several sources: `--data A --data B` or `--data A B` (an unquoted glob expands)
            parser.add_argument(flag, action="extend", nargs="+", metavar="SOURCE", **kwargs)
            continue
        if f.type not in _TYPES:
            raise TypeError(f"no command-line type for TrainConfig.{f.name}: {f.type}")
        parser.add_argument(flag, type=_TYPES[f.type], choices=f.metadata.get("choices"), **kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    knobs = {k: v for k, v in vars(args).items() if k in names}
    if "data" in knobs:  # the first source is `data` (as before), the rest are combined with it
        first, *rest = knobs["data"]
        knobs["data"], knobs["extra_data"] = first, tuple(rest)
    return preset(args.preset, **knobs)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"sentiment-train: {exc}", file=sys.stderr)
        return 2
    from training.pipeline import run  # heavy imports only once the flags are known to be fine

    try:
        published = run(config)
    except DataError as exc:
        print(f"sentiment-train: the training data cannot be used, nothing was published:\n{exc}", file=sys.stderr)
        return 2
    except (StoreError, ConfigError, FileNotFoundError) as exc:
        print(f"sentiment-train: {exc}", file=sys.stderr)
        return 2
    if published is not None:  # None on ranks other than 0 of a distributed run
        print(published, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
