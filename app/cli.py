"""`sentiment-serve`: one flag per Settings field (generated, so flags and env vars never drift).

Precedence: flag > SENTIMENT_* environment variable > default. The model version is
`--model-version` (env SENTIMENT_VERSION), because `--version` prints the program version.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app import __version__
from app.config import Settings

log = logging.getLogger("app.cli")

# Flags whose name differs from the field (the field name would shadow a conventional flag).
FLAG_NAMES = {"version": "--model-version"}
EXIT_CONFIG = 2  # bad settings, or a model that must not be served


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def _base_type(annotation: Any) -> Any:
    """`X | None` -> X."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _add_field(parser: argparse.ArgumentParser, name: str, field: FieldInfo) -> None:
    kind = _base_type(field.annotation)
    env = f"SENTIMENT_{name.upper()}"
    default = "computed" if field.default_factory is not None else field.default
    if name in ("api_key", "admin_api_key", "feedback_api_key"):
        default = "unset"
    help_text = f"{field.description} [env {env}; default {default}]"
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if kind is bool:
        parser.add_argument(flag_name(name), action=argparse.BooleanOptionalAction, **kwargs)
        return
    if typing.get_origin(kind) is typing.Literal:
        kwargs["choices"] = list(typing.get_args(kind))
    elif kind in (int, float):
        kwargs["type"] = kind
    elif kind is Path:
        kwargs["type"] = Path
    kwargs["metavar"] = name.upper() if "choices" not in kwargs else None
    parser.add_argument(flag_name(name), **{k: v for k, v in kwargs.items() if v is not None})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-serve",
        description="Serve a published sentiment model over HTTP with dynamic batching. "
        "Every flag has a SENTIMENT_* environment variable; flags win.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for name, field in Settings.model_fields.items():
        _add_field(parser, name, field)
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    return Settings(**vars(args))


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # OpenMP threads that spin while waiting steal the cores the event loop and the tokenizer need
    # (measured on 2 busy cores: 2x the forward throughput with PASSIVE). These three must precede importing torch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # torch's oneDNN path (bf16 on CPU) caches per input shape, up to 1,024 entries in oneDNN and 1,024 in
    # its ideep wrapper. Batches of mixed lengths rarely repeat a shape, so both caches only grew resident
    # memory, burst after burst (~17 MB a 1,000-request burst, linear); with 64 entries each it levelled off
    # and CPU per forward stayed the same (measured: docs/operations.md, "Recovery after a burst").
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    os.environ.setdefault("LRU_CACHE_CAPACITY", "64")
    try:
        settings = parse_settings(argv)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            where = f"{flag_name(field)} / SENTIMENT_{field.upper()}" if field in Settings.model_fields else field
            print(f"sentiment-serve: invalid {where}: {err['msg']}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)

    from app.lifecycle.service import load_configured
    from inference.errors import ModelLoadError

    try:
        loaded = load_configured(settings)
    except ModelLoadError as exc:
        log.error("refusing to start: %s", exc)
        return EXIT_CONFIG

    from app.lifecycle.server import serve
    from app.main import create_app

    app = create_app(settings, loaded)
    return serve(app, app.state.service, settings)


if __name__ == "__main__":
    sys.exit(main())
