"""`sentiment-models parity`: (re)measure precision parity of a published version on this host.

A plug-in command of the store's CLI (store/cli.py, entry point `sentiment_models.commands`): it
needs the training data (training/data.py) and the inference layer. The version directory is
immutable, so the result goes to a host sidecar
(`<models>/<name>/.parity/<version>-<host fingerprint>.json`, see store/parity_records.py) that
the service prefers over the manifest's record when it starts on a host with the same fingerprint.

Dev data: by default the data the model was trained on, re-split exactly as the manifest's
hyperparameters describe (the built-in data always works; a file must still exist, a hub dataset
must be cached); `--data` (hash-split like sentiment-train) or `--dev-data` (used whole) override it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from inference.options import REDUCED_PRECISIONS
from store.errors import StoreError
from store.model_store import DEFAULT_NAME, ModelStore

log = logging.getLogger(__name__)

_DATA_KEYS = ("data", "extra_data", "dev_data", "test_data", "text_column", "label_column", "data_config")


def _precision_list(value: str) -> list[str]:
    chosen = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in chosen if p not in REDUCED_PRECISIONS]
    if bad or not chosen:
        choices = ", ".join(REDUCED_PRECISIONS)
        raise argparse.ArgumentTypeError(f"choose from {choices} (fp32 is the reference), got {value!r}")
    return chosen


def add_parser(sub: Any) -> None:
    # Measuring needs the inference and training stacks: in a serving-only install (pip install .[serve])
    # say so at once, so `sentiment-models` lists the command as unavailable instead of failing mid-run.
    import importlib.util

    missing = [dist for dist in ("torch", "transformers", "datasets") if importlib.util.find_spec(dist) is None]
    if missing:
        raise ImportError(f"needs {', '.join(missing)} (the train extra)")
    p = sub.add_parser(
        "parity",
        help="measure bf16/fp16/int8 against fp32, and packed against padded, on dev data on this host; "
        "writes a host sidecar",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("ref", nargs="?", default="latest", help="version number, alias or 'latest' (default)")
    p.add_argument("--data", help="labelled data to hash-split like sentiment-train (default: the training data)")
    p.add_argument("--dev-data", help="a labelled file used whole as the dev set")
    p.add_argument("--text-column", help="text column of --data/--dev-data (default: as trained, else 'text')")
    p.add_argument("--label-column", help="label column of --data/--dev-data (default: as trained, else 'label')")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument(
        "--precisions", type=_precision_list, help="comma-separated, e.g. bf16,int8 (default: all the device serves)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--min-agreement", type=float, default=0.99, help="bound shown in the verdict (service default)")
    p.add_argument("--no-write", action="store_true", help="print only; do not write the sidecar")
    p.set_defaults(func=cmd_parity)


def _data_config(manifest: dict[str, Any], args: argparse.Namespace) -> Any:
    """A TrainConfig whose data knobs reproduce the dev split to measure on."""
    from training.config import TrainConfig

    trained = manifest.get("hyperparameters") or {}
    knobs: dict[str, Any] = {}
    if args.data is None and args.dev_data is None:
        knobs = {k: trained[k] for k in (*_DATA_KEYS, "dev_fraction", "test_fraction") if trained.get(k) is not None}
        if trained.get("label_names"):
            knobs["label_names"] = tuple(trained["label_names"])
        if "data" not in knobs:
            raise ValueError("the manifest does not record its training data: pass --data or --dev-data")
    else:
        knobs["data"] = args.data or args.dev_data
        if args.dev_data is not None:
            knobs["dev_data"] = args.dev_data
        for key in ("text_column", "label_column", "dev_fraction", "test_fraction"):
            if trained.get(key) is not None:
                knobs[key] = trained[key]
    for key in ("text_column", "label_column"):
        if getattr(args, key) is not None:
            knobs[key] = getattr(args, key)
    return TrainConfig(**knobs)


def dev_examples(manifest: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[int], dict[str, Any]]:
    """Dev texts with label ids in the model's label order, and a description of where they came from."""
    from training.data import LabelledSplit, load_data, read_table, table_rows

    labels: list[str] = manifest["labels"]
    config = _data_config(manifest, args)
    if args.dev_data is not None and args.data is None:
        path = Path(args.dev_data)
        rows = table_rows(read_table(path), str(path), config.text_column, config.label_column)
        names = [str(r.label) for r in rows]
        split = LabelledSplit([r.text for r in rows], [])
        info: dict[str, Any] = {"source": str(path.resolve()), "split": "whole file"}
    else:
        data = load_data(config)
        split = data.splits["dev"]
        names = [data.labels[i] for i in split.label_ids]
        info = {"source": config.data, "split": "dev", "fingerprint": data.info.get("fingerprint")}
        recorded = (manifest.get("dataset") or {}).get("fingerprint")
        if args.data is None and recorded and recorded != info["fingerprint"]:
            log.warning("the training data changed since publishing: this dev split is not the one it was tuned on")
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise ValueError(f"dev labels {unknown} are not labels of this model {labels}")
    index = {label: i for i, label in enumerate(labels)}
    return split.texts, [index[n] for n in names], info


def _print_table(results: dict[str, dict[str, Any]], bound: float, suffix: str, against: str) -> None:
    print(f"{'run':<16} {'vs':<7} {'agreement':>9} {'acc delta':>9} {'max prob diff':>13} {'examples':>8}  verdict")
    for precision, e in results.items():
        verdict = "servable" if e["agreement"] >= bound else f"refused (< {bound})"
        print(
            f"{precision + suffix:<16} {against:<7} {e['agreement']:>9.4f} {e['accuracy_delta']:>+9.4f} "
            f"{e['max_prob_diff']:>13.4f} {e['examples']:>8}  {verdict}"
        )


def cmd_parity(store: ModelStore, args: argparse.Namespace) -> int:
    import torch

    from inference import parity
    from inference.hardware import host_fingerprint
    from inference.loader import read_pretrained
    from store.parity_records import write_sidecar
    from training.data import DataError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"sentiment-models parity: device {device!r} requested but CUDA is not available", file=sys.stderr)
        return 1
    version = store.resolve(args.name, args.ref)
    problems = store.problems(version.name, version.version)
    if problems:
        raise StoreError(f"{version.path} cannot be measured: {'; '.join(problems)}")
    manifest = store.servable(version).manifest
    try:
        texts, label_ids, data_info = dev_examples(manifest, args)
    except (DataError, ValueError) as exc:
        print(f"sentiment-models parity: cannot get dev data: {exc}", file=sys.stderr)
        return 1
    model, tokenizer = read_pretrained(version.path)
    model.to(device)
    temperature = float(manifest.get("temperature", 1.0))
    found = parity.measure(model, tokenizer, texts, label_ids, temperature, device, args.precisions)
    fingerprint = host_fingerprint(device)
    print(f"{version.name}/{version.version} on {device} (host {fingerprint}), {data_info['source']}")
    _print_table(found.precision, args.min_agreement, "", "fp32")
    _print_table(found.packing, args.min_agreement, " packed", "padded")
    if args.no_write:
        return 0
    data_info["examples"] = len(parity.subsample(len(texts)))
    host = parity.host_details(device)
    path = write_sidecar(
        store, version.name, version.version, manifest, fingerprint, host, data_info, found.precision, found.packing
    )
    print(path)
    return 0
