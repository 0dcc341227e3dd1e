"""Synthetic images with a learnable class signal, for smoke runs and tests without real data.

Each class has a mean colour and a stripe pattern (orientation and frequency); every image draws a
random stripe phase, a small colour shift and pixel noise. A tiny convnet separates the classes
well above chance within a few hundred steps, yet it is not a trivial lookup (the phase varies, so
the pattern must be recognised, not memorised). Deterministic from the seed.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 256  # images generated at once (bounds the float32 temporary at large sizes)


def class_prototypes(num_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Per-class colour (C, 3), stripe angle (C,) and frequency in cycles per image (C,)."""
    rng = np.random.default_rng([seed, 100])
    angles = (np.arange(num_classes) * np.pi / num_classes + rng.uniform(0, np.pi, num_classes)) % np.pi
    return {
        "colour": rng.uniform(0.2, 0.8, size=(num_classes, 3)),
        "angle": rng.permutation(angles),
        "freq": rng.uniform(1.5, 4.0, size=num_classes),
    }


def make_synthetic(n: int, num_classes: int, size: int, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8, N×size×size×3) and their labels (int64), balanced over the classes.

    Train and test use the same ``seed`` (same classes) and different ``stream`` (different images).
    """
    proto = class_prototypes(num_classes, seed)
    rng = np.random.default_rng([seed, 200 + stream])
    targets = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    grid = np.linspace(0.0, 1.0, size, endpoint=False, dtype=np.float32)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    for start in range(0, n, _CHUNK):
        t = targets[start:start + _CHUNK]
        k = len(t)
        angle, freq = proto["angle"][t], proto["freq"][t]
        phase = rng.uniform(0, 2 * np.pi, k)
        proj = xs[None] * np.cos(angle)[:, None, None] + ys[None] * np.sin(angle)[:, None, None]
        stripes = 0.25 * np.sin(2 * np.pi * freq[:, None, None] * proj + phase[:, None, None])
        colour = proto["colour"][t] + rng.normal(0, 0.05, (k, 3))
        img = colour[:, None, None, :] + stripes[..., None] + rng.normal(0, 0.1, (k, size, size, 3))
        images[start:start + k] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return images, targets
