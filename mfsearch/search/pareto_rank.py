"""Pareto ranking of a set of points: non-dominated sorting, crowding distance, and the order that
MO-ASHA promotes by (pure functions, no Ray).

The order is NSGA-II's (Deb et al. 2002), which MO-ASHA (Schmucker et al. 2021) uses at each rung:
1. points are sorted into fronts by non-dominated sorting: front 1 is the non-dominated set, front 2
   the non-dominated set once front 1 is removed, and so on;
2. inside a front, a larger crowding distance comes first: the two ends of the front on each
   objective get infinity, so the most accurate *and the cheapest* points are always kept, then the
   points in the emptiest stretches of the front;
3. points that tie on both (e.g. duplicates) keep their arrival order: earlier first.
A point with a missing or NaN objective comes after every measured point (it cannot be ranked), in
arrival order.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..pareto import dominates


def _measured(point: Sequence[float]) -> bool:
    return all(v is not None and not math.isnan(float(v)) for v in point)


def nondominated_fronts(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[list[int]]:
    """Indices of ``points`` (all measured) grouped into successive non-dominated fronts, each in index order."""
    pts = [tuple(float(v) for v in p) for p in points]
    remaining = list(range(len(pts)))
    fronts = []
    while remaining:
        front = [i for i in remaining if not any(dominates(pts[j], pts[i], maximize) for j in remaining if j != i)]
        fronts.append(front)
        taken = set(front)
        remaining = [i for i in remaining if i not in taken]
    return fronts


def crowding_distances(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each index in ``front`` (the ends of every objective: infinity).

    Each objective's gaps are divided by the front's range on it, so MACs (1e7) and accuracy (1e1)
    weigh the same. An objective on which the whole front is equal adds nothing.
    """
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    dims = len(points[front[0]])
    for d in range(dims):
        order = sorted(front, key=lambda i: (points[i][d], i))
        low, high = points[order[0]][d], points[order[-1]][d]
        span = high - low
        if not math.isfinite(span) or span <= 0:
            continue
        distance[order[0]] = distance[order[-1]] = math.inf
        for k in range(1, len(order) - 1):
            distance[order[k]] += (points[order[k + 1]][d] - points[order[k - 1]][d]) / span
    return distance


def pareto_order(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of ``points``, best first: by front, then crowding distance (larger first), then index
    (the arrival order, so ties resolve the same way every time)."""
    measured = [i for i, p in enumerate(points) if _measured(p)]
    pts = [tuple(float(v) for v in points[i]) for i in measured]
    order = []
    for front in nondominated_fronts(pts, maximize):
        distance = crowding_distances(pts, front)
        order += [measured[k] for k in sorted(front, key=lambda k: (-distance[k], measured[k]))]
    return order + [i for i in range(len(points)) if i not in set(measured)]


def promoted(points: Sequence[Sequence[float]], maximize: Sequence[bool], reduction_factor: float) -> list[int]:
    """The indices successive halving promotes: the best ``ceil(n / reduction_factor)`` in ``pareto_order``.

    ceil, not floor: the first point at a rung always goes on, as in ASHA, whose cutoff is the
    ``(1 - 1/eta)`` quantile of the rung (the same count for one objective).
    """
    if not len(points):
        return []
    keep = max(1, math.ceil(len(points) / reduction_factor - 1e-9))
    return pareto_order(points, maximize)[:keep]
