"""Pareto dominance and hypervolume (pure functions). Objectives are given with their direction.

Hypervolume comes from moocore (the C library behind pymoo's ``HV`` indicator, by the authors of the
reference WFG/HV implementations) rather than code of our own: exact in any dimension, and it takes
mixed directions as they are (``maximise=[True, False]``).
"""
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


def dominated_among(point: Sequence[float], others: Sequence[Sequence[float]],
                    maximize: Sequence[bool]) -> list[int]:
    """Indices of ``others`` that ``point`` dominates (an equal point is not dominated: a tie)."""
    return [j for j, q in enumerate(others) if dominates(point, q, maximize)]


def hypervolume(points: Sequence[Sequence[float]], maximize: Sequence[bool], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (0 for no points).

    ``reference`` must be worse than the points in every objective to count them all, and the same
    for every set compared (all trials and the baselines alone), or the numbers do not compare.

    Points no better than the reference in some objective add nothing; dominated points and
    duplicates add nothing either, so the value depends only on the front.
    """
    import numpy as np
    from moocore import hypervolume as _hv

    if len(reference) != len(maximize):
        raise ValueError(f"reference has {len(reference)} values for {len(maximize)} objectives")
    if not len(points):
        return 0.0
    data = np.asarray(points, dtype=float).reshape(len(points), len(maximize))
    return float(_hv(data, ref=np.asarray(reference, dtype=float), maximise=list(maximize)))


def normalized_hypervolume(points: Sequence[Sequence[float]], maximize: Sequence[bool],
                           reference: Sequence[float], ideal: Sequence[float]) -> float:
    """``hypervolume`` as a share of the box between ``reference`` and ``ideal`` (0..1).

    Raw volumes multiply percent by MACs (units no one can read); the share keeps the comparison
    between two sets with the same reference and ideal points, and reads as a number.
    """
    box = 1.0
    for r, i in zip(reference, ideal):
        box *= abs(i - r)
    return hypervolume(points, maximize, reference) / box if box > 0 else 0.0


def highest_fidelity(fidelities: Sequence[float]) -> tuple[float | None, list[int]]:
    """(the highest fidelity, indices of the points measured at it).

    Fronts compare points at one fidelity only: a trial stopped early by ASHA after 2 of 8 epochs has
    a lower accuracy *because* it trained less, so it must neither join the front nor be beaten on it.
    """
    if not len(fidelities):
        return None, []
    top = max(fidelities)
    return top, [i for i, f in enumerate(fidelities) if f == top]
