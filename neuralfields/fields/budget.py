"""Sizing a field to a parameter budget: benchmarks compare fields at equal parameter counts."""

from __future__ import annotations

import copy
from typing import Callable, Sequence


def with_option(options: dict, path: tuple[str, ...], value) -> dict:
    """A copy of ``options`` with the nested key ``path`` (``("base_options", "hidden")``) set to ``value``."""
    out = copy.deepcopy(options)
    target = out
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return out


def fit_to_budget(count: Callable[[dict], int], options: dict, path: tuple[str, ...], values: Sequence[int],
                  budget: int) -> tuple[dict, int]:
    """The options with the largest of ``values`` at ``path`` whose ``count(options)`` (the
    parameters, growing with the value) stays within ``budget``, and that count; the smallest
    value when even it is over. A binary search: a field is built per probe."""
    lo, hi = 0, len(values) - 1
    if count(with_option(options, path, values[0])) > budget:
        hi = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(with_option(options, path, values[mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    chosen = with_option(options, path, values[lo])
    return chosen, count(chosen)
