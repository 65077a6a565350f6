"""Fine-grained selection inside a kept function: perplexity-spike blocks and a 0/1 knapsack.

Blocks: a line starts a new block when its loss is a local peak above mean + k·std of the
function's line losses (k = 0.2), or follows a blank line. Each block's value is its mean line
loss times its length in lines (information it carries); its weight is its token count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPIKE_K = 0.2
BUDGET_BETA = 0.5
EXACT_DP_CELLS = 2_000_000  # n_items x capacity above which the greedy-plus-repair solver runs


def spike_blocks(losses: Sequence[float], blank: Sequence[bool], k: float = SPIKE_K) -> list[tuple[int, int]]:
    """Split lines 0..n-1 into consecutive [start, end) blocks at perplexity spikes and blank lines."""
    values = np.asarray(losses, dtype=np.float64)
    n = len(values)
    if n == 0:
        return []
    content = values[~np.asarray(blank, dtype=bool)] if any(not b for b in blank) else values
    threshold = float(content.mean() + k * content.std())
    starts = [0]
    for i in range(1, n):
        left = values[i - 1]
        right = values[i + 1] if i + 1 < n else -np.inf
        is_peak = values[i] >= left and values[i] >= right and values[i] > threshold
        if (is_peak or blank[i - 1]) and not blank[i]:
            starts.append(i)
    bounds = starts + [n]
    return [(bounds[j], bounds[j + 1]) for j in range(len(starts))]


def knapsack(values: Sequence[float], weights: Sequence[int], capacity: int) -> list[int]:
    """Indices maximising total value with total weight <= capacity (sorted ascending).

    Exact dynamic programming when items x capacity is small; otherwise greedy by value density
    followed by a repair pass that adds any item still fitting, compared with the best single
    item (the classic 1/2-approximation). Both paths never exceed the capacity.
    """
    n = len(values)
    if n == 0 or capacity < 0:
        return []
    if n * (capacity + 1) <= EXACT_DP_CELLS:
        return _knapsack_exact(values, weights, capacity)
    return _knapsack_greedy(values, weights, capacity)


def _knapsack_exact(values, weights, capacity) -> list[int]:
    n = len(values)
    best = np.zeros(capacity + 1)
    take = np.zeros((n, capacity + 1), dtype=bool)
    for i in range(n):
        w, v = int(weights[i]), float(values[i])
        if v <= 0 or w > capacity:
            continue
        if w <= 0:
            take[i, :] = True
            best += v
            continue
        candidate = best[: capacity + 1 - w] + v  # (capacity + 1 - w,): value with item i added
        improved = candidate > best[w:]
        take[i, w:] = improved
        best[w:] = np.where(improved, candidate, best[w:])
    chosen, room = [], capacity
    for i in range(n - 1, -1, -1):
        if take[i, room]:
            chosen.append(i)
            room -= max(int(weights[i]), 0)
    return sorted(chosen)


def _knapsack_greedy(values, weights, capacity) -> list[int]:
    order = sorted(
        (i for i in range(len(values)) if values[i] > 0),
        key=lambda i: (-values[i] / max(weights[i], 1e-9), i),
    )
    chosen, used = [], 0
    for i in order:
        if used + weights[i] <= capacity:
            chosen.append(i)
            used += weights[i]
    fitting = [i for i in range(len(values)) if 0 < weights[i] <= capacity and values[i] > 0]
    if fitting:
        single = max(fitting, key=lambda i: (values[i], -i))
        if values[single] > sum(values[i] for i in chosen):
            chosen = [single]
    return sorted(chosen)


def function_budget_rates(ami: Sequence[float], base_rate: float, beta: float = BUDGET_BETA) -> np.ndarray:
    """Per-function keep rates R_i = R_base·(1 + β(2·AMI_norm_i − 1)), clipped to [0, 1]."""
    scores = np.asarray(ami, dtype=np.float64)
    if len(scores) == 0:
        return scores
    spread = scores.max() - scores.min()
    normalised = (scores - scores.min()) / spread if spread > 0 else np.full(len(scores), 0.5)
    return np.clip(base_rate * (1 + beta * (2 * normalised - 1)), 0.0, 1.0)
