"""Prometheus metrics (the names are a contract with dashboards and alerts: docs/api.md lists them).

Each app instance owns its registry, so tests can build many apps in one process.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512)
_TOKEN_BUCKETS = tuple(float(2**i) for i in range(4, 18))  # 16 .. 131072
_GC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# Every reason a request can be refused or dropped, by the error_type that announces it.
REJECTION_REASONS = {
    "queue_full": "queue_full",
    "too_many_connections": "too_many_connections",
    "deadline_exceeded": "deadline",
    "client_disconnected": "disconnected",
    "too_many_texts": "too_large",
    "body_too_large": "too_large",
    "input_too_long": "too_large",
    "too_many_windows": "too_large",
    "draining": "draining",
    "not_ready": "not_ready",
    "inference_failed": "inference_failed",
}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sentiment_requests_total", "HTTP requests by route and status code.", ["route", "status"], registry=r
        )
        self.request_duration = Histogram(
            "sentiment_request_duration_seconds",
            "End-to-end HTTP request duration.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "sentiment_queue_wait_seconds",
            "Time from admission until a request's first input starts a forward pass.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokenize_duration = Histogram(
            "sentiment_tokenize_duration_seconds",
            "Tokenization time per request (all its texts).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            "sentiment_inference_duration_seconds",
            "Forward-pass time per batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "sentiment_batch_size", "Inputs per batch.", buckets=_BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "sentiment_batch_tokens", "Padded tokens (longest x count) per batch.", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.padded_tokens = Counter(
            "sentiment_padded_tokens_total", "Tokens fed to the model including padding.", registry=r
        )
        self.real_tokens = Counter(
            "sentiment_real_tokens_total", "Tokens fed to the model excluding padding.", registry=r
        )
        self.inputs = Counter("sentiment_inputs_total", "Texts predicted.", registry=r)
        self.queue_depth = Gauge("sentiment_queue_depth", "Inputs waiting for a batch.", registry=r)
        self.rejections = Counter(
            "sentiment_rejections_total", "Requests refused or dropped, by reason.", ["reason"], registry=r
        )
        self.model_info = Gauge(
            "sentiment_model_info",
            "The active model (value 1): its version, device, precision and batch layout (packed or padded).",
            ["name", "version", "device", "dtype", "layout"],
            registry=r,
        )
        self.model_swaps = Counter(
            "sentiment_model_swaps_total", "Model swaps while serving, by outcome.", ["outcome"], registry=r
        )
        self.gc_pause = Histogram(
            "sentiment_gc_pause_seconds",
            "Cyclic garbage-collector runs by generation: every Python thread, the event loop included, "
            "stops meanwhile (app/lifecycle/gc_control.py).",
            ["generation"],
            buckets=_GC_BUCKETS,
            registry=r,
        )
        self.requests_done = 0  # plain count of answered requests: cheap to read (the heap trimmer's idleness)
        self._gpu_tracked = False
        self._costs_tracked = False
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._duration_children: dict[str, Histogram] = {}

    # ---- hot-path helpers (label lookups cached: .labels() costs more than the increment) ----
    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests_done += 1
        key = (route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(route=route, status=str(status))
        counter.inc()
        hist = self._duration_children.get(route)
        if hist is None:
            hist = self._duration_children[route] = self.request_duration.labels(route=route)
        hist.observe(seconds)

    def observe_batch(self, size: int, padded_tokens: int, real_tokens: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_tokens.observe(padded_tokens)
        self.padded_tokens.inc(padded_tokens)
        self.real_tokens.inc(real_tokens)
        self.inputs.inc(size)
        self.inference_duration.observe(seconds)

    def reject(self, error_type: str) -> None:
        reason = REJECTION_REASONS.get(error_type)
        if reason is not None:
            self.rejections.labels(reason=reason).inc()

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def set_model(self, name: str, version: int, device: str, dtype: str, layout: str = "padded") -> None:
        # clear(): after a model swap only the active version's series remains.
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version), device=device, dtype=dtype, layout=layout).set(1)

    def track_forward_costs(self, fixed: Callable[[], float], per_token: dict[int, Callable[[], float]]) -> None:
        """The measured forward costs the batcher times its cuts by (app/engine/costs.py), read at scrape time."""
        if self._costs_tracked:
            return
        self._costs_tracked = True
        r = self.registry
        Gauge("sentiment_forward_fixed_seconds", "Measured fixed cost of one forward pass.", registry=r).set_function(
            fixed
        )
        gauge = Gauge(
            "sentiment_forward_token_seconds",
            "Measured cost of one (packed: real, padded: padded) token in a forward pass, by intra-op threads.",
            ["threads"],
            registry=r,
        )
        for threads, read in per_token.items():
            gauge.labels(threads=str(threads)).set_function(read)

    def track_gpu_memory(self, allocated: Callable[[], float], reserved: Callable[[], float]) -> None:
        """GPU memory gauges, read at scrape time (once per process: a swap keeps the same device)."""
        if self._gpu_tracked:
            return
        self._gpu_tracked = True
        r = self.registry
        Gauge("sentiment_gpu_memory_allocated_bytes", "GPU memory held by tensors.", registry=r).set_function(allocated)
        Gauge(
            "sentiment_gpu_memory_reserved_bytes", "GPU memory reserved by the caching allocator.", registry=r
        ).set_function(reserved)

    def render(self) -> bytes:
        return generate_latest(self.registry)
