"""Temperature scaling: one scalar T fitted on dev logits, so the served probabilities mean what they say."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.scores import softmax
from training.evaluate import expected_calibration_error, nll


def fit_temperature(logits: np.ndarray, labels: Sequence[int], max_iter: int = 200) -> float:
    """The T > 0 minimising NLL of softmax(logits / T); optimised on log T so T stays positive."""
    import torch

    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = float(log_t.detach().exp().clamp(0.05, 20.0))
    with torch.no_grad():
        fitted = torch.nn.functional.cross_entropy(x / temperature, y).item()
        plain = torch.nn.functional.cross_entropy(x, y).item()
    # LBFGS on a 1-D convex problem should never lose, but a non-finite run must not make things worse.
    return temperature if np.isfinite(fitted) and fitted <= plain else 1.0


def calibration_summary(logits: np.ndarray, labels: Sequence[int], temperature: float) -> dict[str, float]:
    y = np.asarray(labels, dtype=np.int64)
    before, after = softmax(logits), softmax(logits, temperature)
    return {
        "temperature": temperature,
        "nll_before": nll(before, y),
        "nll_after": nll(after, y),
        "ece_before": expected_calibration_error(before, y),
        "ece_after": expected_calibration_error(after, y),
    }
