"""A forward pass that raises, under concurrent load: only that batch's requests fail (typed 503),
everyone else is answered, the worker keeps running and readiness never drops.

Single-request and engine-level versions: test_failing_batch_is_a_typed_503_and_the_worker_keeps_serving
in tests/app/test_api.py and test_a_failing_batch_fails_only_its_requests in tests/app/test_batching.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

TRIGGER = 15044  # "explode" in the bert-base-uncased vocabulary
MAX_BATCH = 4


def test_a_raising_batch_fails_only_its_own_requests_under_load(make_client: Callable[..., TestClient]) -> None:
    failed_batches: list[int] = []
    lock = threading.Lock()

    def faulty(forward: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(batch: Any) -> Any:
            if (batch.input_ids == TRIGGER).any():
                with lock:
                    failed_batches.append(int(batch.input_ids.shape[0]))
                raise RuntimeError("simulated device fault")
            return forward(batch)

        return wrapped

    client = make_client(wrap_forward=faulty, max_batch_size=MAX_BATCH)
    texts = [f"calm review {i}" for i in range(60)]
    texts[10] = texts[35] = "explode"
    readiness: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            readiness.append(client.get("/health").status_code)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda t: client.post("/predict", json={"text": t}), texts))
    finally:
        stop.set()
        prober.join(10)

    failed = [(t, r) for t, r in zip(texts, responses, strict=True) if r.status_code != 200]
    for _, response in failed:
        assert response.status_code == 503 and response.json()["error_type"] == "inference_failed"
    assert {t for t, _ in failed} >= {"explode"}
    # Exactly the inputs that shared a batch with a trigger failed: no more, no fewer.
    assert len(failed) == sum(failed_batches) and all(n <= MAX_BATCH for n in failed_batches)
    assert len(failed) < len(texts) // 2
    assert readiness and set(readiness) == {200}
    after = [client.post("/predict", json={"text": f"after {i}"}) for i in range(5)]
    assert [r.status_code for r in after] == [200] * 5
