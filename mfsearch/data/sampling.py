"""Deterministic, class-balanced index selection: the validation split and the subsets.

Everything here is pure numpy on the label array, so a split is fixed by (labels, seed) alone and
can be computed without touching an image. Each use draws from its own random stream
(``np.random.default_rng([seed, stream])``), so changing, say, ``train_subset`` never changes which
images form the validation split.
"""
from __future__ import annotations

import numpy as np

# One random stream per use of the seed.
STREAM_VAL_SPLIT = 0
STREAM_SUBSET = {"train": 1, "val": 2, "test": 3}


def _grouped_by_class(targets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indices in random order within each class, grouped by class; count of each class)."""
    perm = rng.permutation(len(targets))
    order = perm[np.argsort(targets[perm], kind="stable")]  # stable: keeps the random order inside a class
    _, counts = np.unique(targets, return_counts=True)
    return order, counts


def balanced_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out), holding out ``round(fraction * n_c)`` images of each class c.

    Both arrays are sorted. ``fraction == 0`` holds out nothing.
    """
    targets = np.asarray(targets)
    if fraction <= 0 or len(targets) == 0:
        return np.arange(len(targets)), np.empty(0, dtype=np.int64)
    order, counts = _grouped_by_class(targets, np.random.default_rng([seed, STREAM_VAL_SPLIT]))
    held = np.zeros(len(targets), dtype=bool)
    start = 0
    for count in counts:
        held[order[start:start + int(round(fraction * count))]] = True
        start += count
    return np.flatnonzero(~held), np.flatnonzero(held)


def balanced_quota(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many images to take from each class so that the n images are as equal per class as the
    class sizes allow: small classes give all they have, the rest is shared among the others, and
    the last few (n not divisible) go to randomly chosen classes."""
    counts = np.asarray(counts, dtype=np.int64)
    if n > counts.sum():
        raise ValueError(f"cannot take {n} of {counts.sum()} images")
    quota = np.zeros_like(counts)
    remaining = n
    while remaining > 0:
        open_ = np.flatnonzero(quota < counts)
        share = remaining // len(open_)
        if share == 0:
            quota[rng.choice(open_, size=remaining, replace=False)] += 1
            break
        add = np.minimum(share, counts[open_] - quota[open_])
        quota[open_] += add
        remaining -= int(add.sum())
    return quota


def balanced_subset(targets: np.ndarray, n: int, seed: int, stream: int) -> np.ndarray:
    """``n`` sorted indices into ``targets``, as equal per class as possible.

    With the same seed and stream, a smaller subset is (up to the few remainder images) contained in
    a larger one, so growing ``train_subset`` in a sweep adds images rather than redrawing them.
    """
    targets = np.asarray(targets)
    order, counts = _grouped_by_class(targets, np.random.default_rng([seed, stream, 0]))
    quota = balanced_quota(counts, n, np.random.default_rng([seed, stream, 1]))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [order[s:s + q] for s, q in zip(starts, quota)]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
