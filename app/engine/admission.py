"""Admission of a chunked request (truncation mode `chunk`): its windows count like texts.

A text over the token limit comes back from the tokenizer as several windows, each one more model
input. Before tokenizing, the engine can only reserve one queue slot per text; afterwards the
request's real size is known and must pass the same bounds a request of that many texts would.
"""

from __future__ import annotations

from app.errors import QueueFull, TooManyWindows


def admit_windows(inputs: int, texts: int, max_windows: int, admitted: int, capacity: int) -> None:
    """Raise unless `inputs` windows (from `texts` texts) fit the per-request limit and the queue.

    `admitted` is what already holds queue slots, excluding this request (its reservation is over).
    """
    if inputs > max_windows:
        raise TooManyWindows(
            f"the texts make {inputs} windows (model inputs) in chunk mode; the limit per request is "
            f"{max_windows}: send fewer or shorter texts, or use truncation 'truncate'"
        )
    # A request that did not grow is admitted as any other: its slots were reserved before tokenizing.
    if inputs > texts and admitted + inputs > capacity:
        raise QueueFull(
            f"queue full ({admitted} of {capacity} inputs queued; this request needs {inputs} windows); retry later",
            retry_after_s=1,
        )
