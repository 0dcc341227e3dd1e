"""Pareto dominance (pure functions). Objectives are given with their direction."""
from __future__ import annotations

from typing import Sequence


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, up in zip(a, b, maximize):
        if (x < y) if up else (x > y):
            return False
        if x != y:
            better = True
    return better


def pareto_indices(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points (duplicates are all kept: neither dominates the other)."""
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)]
