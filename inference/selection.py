"""Which precision serves, and whether batches run packed: hardware proposes, recorded parity disposes.

`auto` proposes, in order: on CUDA bf16 (where the GPU supports it), then fp16; on CPU bf16 where the
CPU computes it natively, then int8 where it has int8 dot-product units; fp32 always closes the list.
A candidate other than fp32 is taken only if its recorded label agreement with fp32 (see
store/parity_records.py) reaches `min_precision_agreement`. Under `auto` an unmeasured precision is
skipped too: a faster answer that nobody compared with fp32 could silently differ. An explicit
`--dtype` is the operator's choice and runs unmeasured (with a warning), but a record below the bound
still refuses it in favour of fp32.

Packed (padding-free) execution follows the same rule with its own records (`packing_parity`, packed
against padded in the chosen precision): `auto` packs only a model that can be packed and whose record
passes the bound; `on` packs unmeasured (with a warning) unless a record is below the bound; `off` pads.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from inference.errors import ModelLoadError
from inference.hardware import CpuFeatures, cpu_features, cuda_bf16_supported, host_fingerprint
from inference.options import REDUCED_PRECISIONS, Dtype, DtypeChoice, LoadOptions, PackingChoice
from inference.precision import method, runnable_precisions, unsupported
from inference.source import ModelSource
from store.model_store import ModelStore
from store.parity_records import PACKING_TABLE, ParityRecords, read_records

log = logging.getLogger("inference.selection")

_HOW_TO_MEASURE = "record it with `sentiment-models parity` on this host"


@dataclass(frozen=True)
class PrecisionChoice:
    requested: DtypeChoice
    dtype: Dtype
    candidates: tuple[Dtype, ...]
    skipped: tuple[str, ...] = ()  # one reason per candidate passed over, in order
    parity: dict[str, Any] | None = None  # the record that admitted `dtype` (None for fp32 / unmeasured)
    hardware: str = ""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # every record in force, with its source
    method: str = ""  # how dtype runs on the device (inference.precision.method)

    def describe(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "dtype": self.dtype,
            "candidates": list(self.candidates),
            "skipped": list(self.skipped),
            "parity": self.parity,
            "hardware": self.hardware,
            "method": self.method,
        }


def candidates(requested: DtypeChoice, device: str, cpu: CpuFeatures, cuda_bf16: bool) -> list[Dtype]:
    """Precisions to try, best first; fp32 is always last. Impossible explicit choices raise."""
    if requested != "auto":
        if (reason := unsupported(device, requested)) is not None:
            raise ModelLoadError(reason)
        return [requested] if requested == "fp32" else [requested, "fp32"]
    runnable = runnable_precisions(device, cuda_bf16)
    if not device.startswith("cuda"):
        # On a CPU only the instruction sets that make a precision fast propose it.
        fast = {"bf16": cpu.native_bf16, "int8": cpu.int8_dot_product}
        runnable = [p for p in runnable if fast[p]]
    return [*runnable, "fp32"]


def choose(
    requested: DtypeChoice,
    proposed: list[Dtype],
    records: ParityRecords,
    min_agreement: float,
    hardware: str = "",
) -> PrecisionChoice:
    """The first proposed precision whose recorded parity allows it (fp32 needs none)."""
    skipped: list[str] = []
    for dtype in proposed:
        if dtype == "fp32":
            return PrecisionChoice(requested, dtype, tuple(proposed), tuple(skipped), None, hardware, records.merged())
        entry = records.entries.get(dtype)
        if entry is None:
            if requested == "auto":
                skipped.append(f"{dtype}: no parity recorded for this model; {_HOW_TO_MEASURE}")
                continue
            log.warning("dtype %s requested, but its parity with fp32 was never measured: %s", dtype, _HOW_TO_MEASURE)
            return PrecisionChoice(requested, dtype, tuple(proposed), tuple(skipped), None, hardware, records.merged())
        if entry["agreement"] < min_agreement:
            skipped.append(
                f"{dtype}: recorded agreement {entry['agreement']:.4f} with fp32 is below "
                f"min_precision_agreement {min_agreement} ({records.origins[dtype]})"
            )
            continue
        parity = {**entry, "source": records.origins[dtype]}
        return PrecisionChoice(requested, dtype, tuple(proposed), tuple(skipped), parity, hardware, records.merged())
    raise AssertionError("candidates() always ends with fp32")  # pragma: no cover


def log_choice(choice: PrecisionChoice, device: str, problems: list[str]) -> None:
    """One line for the decision, one warning per refused candidate or ignored record."""
    for problem in problems:
        log.warning("precision parity record ignored: %s", problem)
    for reason in choice.skipped:
        log.warning("precision %s", reason)
    if choice.skipped:
        log.warning("falling back to %s", choice.dtype)
    measured = ""
    if choice.parity is not None:
        p = choice.parity
        measured = (
            f"; parity with fp32: agreement {p['agreement']:.4f}, accuracy delta {p['accuracy_delta']:+.4f}, "
            f"max probability difference {p['max_prob_diff']:.4f} (from {p['source']})"
        )
    log.info(
        "precision: requested %s -> %s (%s) on %s [%s]%s",
        choice.requested,
        choice.dtype,
        choice.method or choice.dtype,
        device,
        choice.hardware,
        measured,
    )


def drop_other_methods(records: ParityRecords, device: str) -> None:
    """A record measured with another method (e.g. bf16 autocast) says nothing about how we run it now."""
    for precision in [p for p in records.entries if p in REDUCED_PRECISIONS]:
        recorded, runs = records.entries[precision].get("method"), method(device, precision)  # type: ignore[arg-type]
        if recorded is not None and recorded != runs:
            records.drop(precision, f"measured as {recorded!r}, but this service runs {runs!r}; re-measure it")


def resolve_precision(options: LoadOptions, store: ModelStore, source: ModelSource, device: str) -> PrecisionChoice:
    """This host's candidates for `options.dtype`, judged by the parity recorded for `source`."""
    cpu = cpu_features()
    on_gpu = device.startswith("cuda")
    cuda_bf16 = on_gpu and cuda_bf16_supported()
    proposed = candidates(options.dtype, device, cpu, cuda_bf16)
    fingerprint = host_fingerprint(device, cpu)
    records = read_records(store, source.name, source.version, source.manifest, fingerprint)
    drop_other_methods(records, device)
    hardware = cpu.describe()
    if on_gpu:
        import torch

        gpu = torch.cuda.get_device_name(torch.device(device).index or 0)
        hardware = f"{gpu} ({'bf16' if cuda_bf16 else 'no bf16'})"
    choice = choose(options.dtype, proposed, records, options.min_precision_agreement, f"{hardware}, {fingerprint}")
    choice = dataclasses.replace(choice, method=method(device, choice.dtype))
    if not on_gpu and choice.dtype == "bf16" and not cpu.native_bf16:
        log.warning("this CPU has no native bf16 (avx512_bf16/amx_bf16): bf16 is emulated and likely slower than fp32")
    log_choice(choice, device, records.problems)
    return choice


@dataclass(frozen=True)
class ExecutionChoice:
    """Whether batches run packed, and why (shown in the start-up log, /health and /v1/models)."""

    requested: PackingChoice
    packed: bool
    reason: str
    parity: dict[str, Any] | None = None  # the record that admitted packing, with its source

    @property
    def layout(self) -> str:
        return "packed" if self.packed else "padded"

    def describe(self) -> dict[str, Any]:
        return {"requested": self.requested, "layout": self.layout, "reason": self.reason, "parity": self.parity}


def choose_packing(
    requested: PackingChoice, problem: str | None, dtype: Dtype, records: ParityRecords, min_agreement: float
) -> ExecutionChoice:
    """Packed or padded, from the model's ability (`problem`), the request and the recorded parity."""
    if requested == "off":
        return ExecutionChoice(requested, False, "packing is off (--packing off)")
    if problem is not None:
        return ExecutionChoice(requested, False, f"this model cannot be packed: {problem}")
    entry = records.entries.get(dtype)
    if entry is None:
        if requested == "auto":
            return ExecutionChoice(
                requested, False, f"no packed-vs-padded parity recorded for {dtype}; {_HOW_TO_MEASURE}"
            )
        log.warning("packing on, but its parity with padded execution was never measured: %s", _HOW_TO_MEASURE)
        return ExecutionChoice(requested, True, "packing requested (--packing on), parity unmeasured")
    if entry["agreement"] < min_agreement:
        return ExecutionChoice(
            requested,
            False,
            f"recorded packed agreement {entry['agreement']:.4f} with padded {dtype} is below "
            f"min_precision_agreement {min_agreement} ({records.origins[dtype]})",
        )
    parity = {**entry, "source": records.origins[dtype]}
    return ExecutionChoice(requested, True, f"recorded packed agreement {entry['agreement']:.4f} passes", parity)


def resolve_packing(
    options: LoadOptions, store: ModelStore, source: ModelSource, device: str, dtype: Dtype, model: Any
) -> ExecutionChoice:
    from inference.packing import packing_problem

    fingerprint = host_fingerprint(device)
    records = read_records(store, source.name, source.version, source.manifest, fingerprint, PACKING_TABLE)
    for problem in records.problems:
        log.warning("packing parity record ignored: %s", problem)
    choice = choose_packing(options.packing, packing_problem(model), dtype, records, options.min_precision_agreement)
    (log.info if choice.packed or options.packing != "on" else log.warning)(
        "execution: %s (%s)", choice.layout, choice.reason
    )
    return choice
