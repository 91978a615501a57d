"""`sentiment-models`: list, show, verify and alias published model versions.

Exit status: 0 on success, 1 when something asked for is missing or a directory fails
verification, 2 for bad usage.

Commands that need more than the standard library (`parity` measures models, so it needs torch and
the training data) plug in through the `sentiment_models.commands` entry-point group: each entry
point names a function `add_parser(subparsers)`. The store itself imports nothing above it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from store.errors import StoreError
from store.manifest import read_manifest
from store.model_store import DEFAULT_NAME, ModelStore
from store.servable import version_problems

COMMAND_GROUP = "sentiment_models.commands"


def _headline(manifest: dict[str, Any]) -> str:
    dev = (manifest.get("metrics") or {}).get("dev") or {}
    score = f"dev acc {dev['accuracy']:.4f}" if isinstance(dev.get("accuracy"), int | float) else "dev acc ?"
    return f"{manifest.get('created_at', '?')}  {score}  labels {','.join(manifest.get('labels', []))}"


def cmd_list(store: ModelStore, args: argparse.Namespace) -> int:
    names = [args.name] if args.name else store.names()
    found = False
    for name in names:
        versions = store.versions(name)
        found = found or bool(versions)
        if args.quiet:
            for version in versions:
                print(f"{name}/{version}")
            continue
        if not versions:
            continue
        by_version: dict[int, list[str]] = {}
        for alias, version in store.aliases(name).items():
            by_version.setdefault(version, []).append(alias)
        print(name)
        for version in versions:
            path = store.version_dir(name, version)
            try:
                summary = _headline(read_manifest(path))
            except StoreError as exc:
                summary = f"unreadable manifest ({exc})"
            aliases = f"  [{', '.join(sorted(by_version.get(version, [])))}]" if version in by_version else ""
            print(f"  {version:>4}  {summary}{aliases}")
    if not found:
        what = f"model {args.name!r}" if args.name else "any model"
        print(f"no published versions of {what} under {store.root}", file=sys.stderr)
        return 1
    return 0


def cmd_show(store: ModelStore, args: argparse.Namespace) -> int:
    version = store.resolve(args.name, args.ref)
    manifest = read_manifest(version.path)
    if not args.files:
        manifest["files"] = f"{len(manifest['files'])} files (show --files to list them)"
    manifest["path"] = str(version.path)
    print(json.dumps(manifest, indent=2))
    return 0


def cmd_verify(store: ModelStore, args: argparse.Namespace) -> int:
    if args.path is not None:
        targets = [(args.path, None, None)]
    elif args.all:
        targets = [(store.version_dir(args.name, v), args.name, v) for v in store.versions(args.name)]
        if not targets:
            print(f"no published versions of model {args.name!r} under {store.root}", file=sys.stderr)
            return 1
    else:
        resolved = store.resolve(args.name, args.ref)
        targets = [(resolved.path, resolved.name, resolved.version)]
    failed = 0
    for path, name, version in targets:
        problems = version_problems(Path(path), name, version)
        label = f"{name}/{version}" if name else str(path)
        if problems:
            failed += 1
            for problem in problems:
                print(f"FAIL {label}: {problem}")
        else:
            print(f"OK   {label}")
    return 1 if failed else 0


def cmd_alias(store: ModelStore, args: argparse.Namespace) -> int:
    if args.delete:
        store.remove_alias(args.name, args.alias)
        print(f"removed alias {args.alias!r} of {args.name}")
    elif args.version is not None:
        store.set_alias(args.name, args.alias, args.version)
        print(f"{args.name}:{args.alias} -> {args.version}")
    elif args.alias is not None:
        print(store.resolve(args.name, args.alias).version)
    else:
        for alias, version in sorted(store.aliases(args.name).items()):
            print(f"{alias} -> {version}")
    return 0


def _add_plugin_commands(sub: Any) -> None:
    for entry in sorted(importlib.metadata.entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            # Loading the plug-in or adding its parser may find a stack missing: e.g. `parity` in a
            # serving-only install (pip install .[serve]). Say what is missing instead of failing every command.
            entry.load()(sub)
        except ImportError as exc:
            p = sub.add_parser(entry.name, help=f"unavailable here: {exc}")
            p.set_defaults(func=_unavailable(entry.name, exc))


def _unavailable(name: str, exc: ImportError) -> Any:
    def refuse(_store: ModelStore, _args: argparse.Namespace) -> int:
        print(f"sentiment-models {name}: not available in this installation ({exc}); pip install '.[train]'")
        return 2

    return refuse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentiment-models", description="Inspect and manage published models.")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="model store root (default: models)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="versions (with aliases) of one or every model")
    p.add_argument("--name", help="only this model (default: every model)")
    p.add_argument("--quiet", action="store_true", help="print only NAME/VERSION lines; exit 1 when there are none")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print a version's manifest")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("ref", nargs="?", default="latest", help="version number, alias or 'latest' (default)")
    p.add_argument("--files", action="store_true", help="include the checksum table")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "verify", help="checksums and servable rules; exit 1 naming every problem (the service's own check)"
    )
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("ref", nargs="?", default="latest", help="version number, alias or 'latest' (default)")
    p.add_argument("--all", action="store_true", help="verify every version of --name")
    p.add_argument("--path", type=Path, help="verify this version directory instead (anywhere on disk)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("alias", help="list aliases, resolve one, point one at a version, or delete one")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("alias", nargs="?", help="alias name, e.g. production")
    p.add_argument("version", nargs="?", type=int, help="version to point the alias at")
    p.add_argument("--delete", action="store_true", help="remove the alias")
    p.set_defaults(func=cmd_alias)

    _add_plugin_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "alias" and args.delete and (args.alias is None or args.version is not None):
        parser.error("alias --delete takes exactly one alias name")
    store = ModelStore(args.models_dir)
    try:
        return int(args.func(store, args))
    except StoreError as exc:
        print(f"sentiment-models: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
