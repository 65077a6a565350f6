"""Fine-stage algorithms: spike blocks, knapsack (exact and greedy), per-function budgets."""

import itertools
import random

import numpy as np

from lctk.compress import fine


def brute_force(values, weights, capacity):
    best, best_set = 0.0, []
    for r in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), r):
            weight = sum(weights[i] for i in subset)
            value = sum(values[i] for i in subset)
            if weight <= capacity and value > best + 1e-12:
                best, best_set = value, list(subset)
    return best, best_set


def test_exact_knapsack_matches_brute_force():
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 9)
        values = [round(rng.uniform(0.1, 10), 3) for _ in range(n)]
        weights = [rng.randint(1, 30) for _ in range(n)]
        capacity = rng.randint(0, 80)
        chosen = fine.knapsack(values, weights, capacity)
        assert sum(weights[i] for i in chosen) <= capacity
        assert abs(sum(values[i] for i in chosen) - brute_force(values, weights, capacity)[0]) < 1e-9


def test_greedy_knapsack_stays_within_capacity_and_is_half_optimal(monkeypatch):
    monkeypatch.setattr(fine, "EXACT_DP_CELLS", 0)  # force the greedy-plus-repair path
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 9)
        values = [rng.uniform(0.1, 10) for _ in range(n)]
        weights = [rng.randint(1, 40) for _ in range(n)]
        capacity = rng.randint(1, 80)
        chosen = fine.knapsack(values, weights, capacity)
        assert sum(weights[i] for i in chosen) <= capacity
        assert sum(values[i] for i in chosen) >= 0.5 * brute_force(values, weights, capacity)[0] - 1e-9


def test_spike_blocks_split_at_peaks_and_blank_lines():
    losses = [3.0, 1.0, 1.0, 6.0, 1.0, 1.0, 0.0, 2.0, 1.0]
    blank = [False] * 6 + [True] + [False] * 2
    blocks = fine.spike_blocks(losses, blank)
    assert blocks == [(0, 3), (3, 7), (7, 9)]  # a peak at line 3, a blank line before line 7
    assert fine.spike_blocks([], []) == []
    flat = fine.spike_blocks([1.0] * 5, [False] * 5)
    assert flat == [(0, 5)]


def test_function_budget_rates_follow_the_formula():
    rates = fine.function_budget_rates([0.0, 5.0, 10.0], base_rate=0.4)
    np.testing.assert_allclose(rates, [0.4 * 0.5, 0.4, 0.4 * 1.5])
    np.testing.assert_allclose(fine.function_budget_rates([2.0, 2.0], 0.3), [0.3, 0.3])
    assert fine.function_budget_rates([0.0, 1.0], base_rate=0.9).max() == 1.0
