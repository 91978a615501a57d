"""Every knob of the service in one pydantic-settings class.

Environment variables carry the SENTIMENT_ prefix (SENTIMENT_MODELS_DIR, ...); `sentiment-serve`
generates one command-line flag per field from this class (app/cli.py), so the two cannot drift.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference.options import DtypeChoice, LoadOptions, PackingChoice
from inference.padding import padded_length

Truncation = Literal["truncate", "reject", "chunk"]
LogLevel = Literal["debug", "info", "warning", "error"]


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", extra="ignore", frozen=True)

    # ---- model ------------------------------------------------------------------------
    models_dir: Path = Field(Path("models"), description="Root of the model store (docs/model-format.md).")
    name: str = Field("sentiment", description="Model name inside the store.")
    version: str = Field("latest", description="Model version: a number, an alias, or 'latest'.")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (CUDA when present), cpu, cuda or cuda:N."
    )
    dtype: DtypeChoice = Field(
        "auto",
        description="Inference precision. auto: on CUDA bf16 (else fp16), on CPU bf16 where the CPU has native "
        "bf16, else int8 where it has int8 dot-product units, else fp32; a precision is only taken when its "
        "recorded parity with fp32 passes min_precision_agreement. fp16 needs CUDA, int8 the CPU.",
    )
    min_precision_agreement: float = Field(
        0.99,
        ge=0.0,
        le=1.0,
        description="Least recorded share of labels a reduced precision must agree on with fp32 to be served; "
        "below it the next candidate (finally fp32) is used.",
    )
    packing: PackingChoice = Field(
        "auto",
        description="Padding-free batches (BERT encoders): auto packs when the recorded packed-vs-padded parity "
        "passes min_precision_agreement, on packs unless a record disagrees, off always pads.",
    )
    max_length: int | None = Field(
        None, ge=8, le=8192, description="Token limit per input; default: the model's own limit."
    )
    torch_threads: int = Field(
        default_factory=usable_cpus, ge=1, le=256, description="torch intra-op threads (default: usable CPUs)."
    )
    inference_workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Batches computed side by side in their own threads (a lone batch uses all torch_threads, "
        "concurrent ones share them); default 2 on a CPU with torch_threads >= 2, else 1.",
    )

    # ---- HTTP -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address (containers set 0.0.0.0).")
    port: int = Field(8000, ge=0, le=65535, description="Bind port.")
    api_key: SecretStr | None = Field(
        None,
        description="When set, /predict and /v1/models need 'Authorization: Bearer <key>' "
        "(prefer the env var: command lines are visible to other users).",
    )
    log_level: LogLevel = Field("info", description="Log level.")
    access_log: bool = Field(False, description="Log one line per HTTP request (costs throughput).")
    drain_timeout_s: float = Field(
        30.0, ge=0, le=3600, description="On SIGTERM: seconds to finish queued and in-flight work."
    )
    keep_alive_timeout_s: int = Field(
        # uvicorn's 5 s equals httpx's pool expiry: a client reusing a connection as the server closed it lost
        # its request with no status (docs/operations.md, Bursts). 120 s outlasts the idle expiry of common
        # clients and proxies (httpx 5, aiohttp 15, nginx upstream 60, AWS ALB 60, Go net/http 90).
        120,
        ge=1,
        le=3600,
        description="Seconds an idle kept-alive connection stays open. Keep it above the idle timeout of every "
        "client and proxy in front, so that the client, never the server, closes a connection it may reuse.",
    )
    listen_backlog: int | None = Field(
        None,
        ge=1,
        le=1 << 20,
        description="Connections the kernel queues until the server accepts them (capped by net.core.somaxconn); "
        "default: max(2048, queue_capacity), so a burst of one-text clients as large as the queue waits in it.",
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        le=1 << 24,
        description="Most open connections (idle kept-alive ones included); a request on one more gets 503 "
        "too_many_connections with Retry-After. Default: the open-files limit (raised to its hard limit at "
        "start) minus 256 kept for the process, so the server answers instead of failing accept() (EMFILE).",
    )

    gc_freeze: bool = Field(
        True,
        description="After warm-up (and after a model swap) move every object alive into the garbage "
        "collector's permanent generation, so full collections during a burst skip them (shorter event-loop "
        "stalls; docs/operations.md). Off: the collector's defaults.",
    )
    heap_trim_interval_s: float = Field(
        # Measured: resident memory grew ~100 MB a burst of 1,000 clients, nearly all of it freed memory
        # glibc kept; trimming when idle gave it back (docs/operations.md, "Recovery after a burst").
        1.0,
        ge=0,
        le=3600,
        description="How often to check whether to return freed C-heap memory to the OS (glibc malloc_trim, in "
        "a thread): after an interval with no request answered and none queued, if requests were answered since "
        "the last trim and resident memory is 32 MiB above the least a trim left. 0: never.",
    )

    # ---- model swap (app/lifecycle/swap.py, app/lifecycle/watcher.py) -----------------------
    admin_api_key: SecretStr | None = Field(
        None,
        description="Bearer key for POST /v1/models/reload (falls back to api_key); with neither set the "
        "admin endpoint answers 403 admin_disabled.",
    )
    watch_alias: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9._-]{0,127}$",
        description="Follow this alias (or 'latest'): when it moves to another version, swap to it.",
    )
    watch_interval_s: float = Field(
        1.0, gt=0, le=3600, description="How often the watcher looks at the store (two stat calls)."
    )

    # ---- model quality (app/quality/, docs/operations.md "Model quality in production") -----------
    canary_gate: Literal["enforce", "warn"] = Field(
        "enforce",
        description="A version whose canary answers differ from its published fp32 answers beyond the recorded "
        "tolerance: enforce refuses it (start: exit 2; swap/shadow: 422 canary_failed), warn logs and serves it.",
    )
    low_confidence_threshold: float = Field(
        0.6, gt=0, lt=1, description="An answer whose top probability is below this counts as low-confidence."
    )
    drift_window: int = Field(
        2000, ge=10, le=1_000_000, description="Most recent answers per version the drift score (PSI) is computed on."
    )
    drift_min_inputs: int = Field(
        200, ge=1, le=1_000_000, description="Answers the drift window needs before a drift score is exported."
    )
    feedback_dir: Path | None = Field(
        None,
        description="Directory for durable feedback (feedback-*.jsonl, fsynced; sentiment-train --data reads them); "
        "unset: feedback only feeds the live metrics.",
    )
    feedback_store_text: bool = Field(
        False,
        description="Keep the texts of recent requests so feedback without 'text' can still train (privacy: off).",
    )
    feedback_api_key: SecretStr | None = Field(
        None, description="Bearer key for POST /feedback (falls back to api_key; with neither, no key is needed)."
    )
    feedback_records: int = Field(
        100_000,
        ge=0,
        le=1 << 24,
        description="Most recent answered inputs kept for feedback (oldest dropped first); 0 turns feedback off.",
    )
    feedback_max_age_s: float = Field(
        3600.0, gt=0, le=30 * 86400, description="Feedback is accepted for answers at most this old."
    )
    feedback_max_file_bytes: int = Field(
        64 << 20, ge=1024, le=1 << 40, description="A feedback file is rotated before it passes this size."
    )
    feedback_max_total_bytes: int = Field(
        1 << 30,
        ge=1024,
        le=1 << 50,
        description="Cap on the feedback directory's files; beyond it feedback is refused (507 feedback_store_full).",
    )
    shadow_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Share of /predict requests a shadow candidate also scores (off the response path).",
    )
    shadow_max_busy: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Most share of the service's CPU time the shadow may use (it slows the active version by about "
        "that much when CPU-bound); what it cannot score in time is dropped and counted.",
    )
    shadow_queue: int = Field(
        64, ge=1, le=1 << 16, description="Most requests waiting for the shadow; beyond it they are dropped."
    )

    # ---- batching ---------------------------------------------------------------------
    max_batch_size: int = Field(64, ge=1, le=4096, description="Most inputs in one forward pass.")
    max_batch_tokens: int = Field(
        8192, ge=8, le=1 << 22, description="Most padded tokens (longest x count) in one forward pass."
    )
    max_wait_ms: float | None = Field(
        None,
        ge=0,
        le=10_000,
        description="While the device is busy, how long the next batch may keep filling; default: until just "
        "before a worker is expected to free up (forward costs measured at warm-up and on every batch).",
    )
    sort_window: int = Field(
        # 1024 over 256: ~5% more throughput with 32-text requests at concurrency 16 (docs/performance.md).
        1024,
        ge=1,
        le=1 << 16,
        description="Oldest queued inputs considered when grouping inputs by length.",
    )
    max_padding_ratio: float | None = Field(
        None,
        ge=1.0,
        description="Stop growing a batch (once it holds 8 inputs or 128 real tokens) when (longest x count) / "
        "real tokens would exceed this; default 1.1 on CPU, unlimited on CUDA.",
    )
    queue_capacity: int = Field(2048, ge=1, le=1 << 24, description="Most queued inputs; beyond it: 429.")

    # ---- limits -----------------------------------------------------------------------
    request_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Default deadline per request (a request may ask for a shorter or longer one)."
    )
    max_texts_per_request: int = Field(256, ge=1, le=1 << 16, description="Most texts in one request; beyond: 413.")
    max_body_bytes: int = Field(
        1 << 20, ge=64, le=1 << 30, description="Largest request body in bytes; beyond: 413, checked before parsing."
    )
    truncation: Truncation = Field(
        "truncate",
        description="Texts over the token limit: 'truncate' (and flag them), 'reject' (413) or 'chunk' (score "
        "overlapping windows and average them, docs/long-texts.md); a request may choose with 'truncation'.",
    )
    max_windows_per_request: int = Field(
        # 256: a request's worst case stays what it is without chunking (256 texts at the token limit).
        256,
        ge=1,
        le=1 << 16,
        description="Chunk mode: most windows (model inputs) one request's texts may make; beyond: 413.",
    )

    @model_validator(mode="after")
    def _batch_fits_one_input(self) -> Settings:
        if self.max_length is not None and self.max_batch_tokens < padded_length(self.max_length):
            raise ValueError(
                f"max_batch_tokens ({self.max_batch_tokens}) must hold one input of max_length "
                f"({self.max_length}, padded to {padded_length(self.max_length)})"
            )
        return self

    def load_options(self) -> LoadOptions:
        """What the inference layer needs to load a version the way this service runs it."""
        return LoadOptions(
            device=self.device,
            dtype=self.dtype,
            min_precision_agreement=self.min_precision_agreement,
            packing=self.packing,
            max_length=self.max_length,
            torch_threads=self.torch_threads,
            max_batch_tokens=self.max_batch_tokens,
        )

    def resolved_inference_workers(self, device: str) -> int:
        # On a CPU, two batches on one thread each beat one batch whose threads wait for each other at
        # every operator: +25% sentences/s with 1-text requests at concurrency 64 (docs/performance.md).
        # A GPU runs one kernel stream; a second worker would only contend for it.
        if self.inference_workers is not None:
            return self.inference_workers
        return 2 if not device.startswith("cuda") and self.torch_threads >= 2 else 1

    def resolved_padding_ratio(self, device: str) -> float | None:
        # On a CPU every padded token costs compute; on a GPU fewer, larger batches win.
        if self.max_padding_ratio is not None:
            return self.max_padding_ratio
        # 1.1: measured best of 1.05-1.3 with the mixed benchmark workload (docs/performance.md).
        return None if device.startswith("cuda") else 1.1
