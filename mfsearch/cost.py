"""Params and MACs of an ArchConfig, analytically: no weights allocated, microseconds per model.

Convention (the paper's): MACs of conv, linear, matmul and einsum; norms, activations, pooling,
softmax, biases and scales cost nothing. Frozen params (RandFormer's random matrices) are counted
apart from trainable ones. Each mixer and activation states its own count next to its code
(``count``/``param_count``), so a new mixer is costed by its own class; tests check every
registered mixer's count against a trace of the real module.
"""
from __future__ import annotations

import dataclasses

from .config import ArchConfig, ConvSpec, StageConfig
from .layers.count import Count, conv2d, linear


@dataclasses.dataclass(frozen=True)
class PartCost:
    name: str            # "stem", "stage0" (its downsampling included), ..., "head"
    params: int          # trainable
    frozen_params: int
    macs: int
    grid: tuple[int, int] | None = None  # (H, W) of a stage's tokens


@dataclasses.dataclass(frozen=True)
class ModelCost:
    img_size: int
    params: int
    frozen_params: int
    macs: int
    parts: tuple[PartCost, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _norm(spec, dim: int) -> Count:
    return Count(spec.cls.param_count(dim, spec.params))


def _act(spec) -> Count:
    trainable, frozen = spec.cls.param_count(spec.params)
    return Count(trainable, frozen)


def _conv(c_in: int, c_out: int, conv: ConvSpec, grid: tuple[int, int]) -> Count:
    return conv2d(c_in, c_out, conv.kernel_size, grid[0] * grid[1], bias=True)


def _block(stage: StageConfig, mixer, grid: tuple[int, int]) -> Count:
    c, n = stage.dim, grid[0] * grid[1]
    hidden = int(stage.mlp_ratio * c)
    scales = sum(c for v in (stage.res_scale_init, stage.layer_scale_init) if v is not None) * 2
    return (_norm(stage.norm, c).times(2) + mixer.cls.count(c, grid, mixer.params)
            + linear(c, hidden, n, stage.mlp_bias) + _act(stage.mlp_act)
            + linear(hidden, c, n, stage.mlp_bias) + Count(scales))


def _head(cfg: ArchConfig) -> Count:
    d, k = cfg.stages[-1].dim, cfg.num_classes
    total = Count(2 * d) if cfg.output_norm else Count()
    if k == 0:
        return total
    if cfg.head.type == "linear":
        return total + linear(d, k, 1, bias=True)
    hidden = int(cfg.head.mlp_ratio * d)
    return total + linear(d, hidden, 1, True) + _act(cfg.head.act) + Count(2 * hidden) + linear(hidden, k, 1, True)


def count_config(cfg: ArchConfig, img_size: int | None = None) -> ModelCost:
    """Cost of ``cfg`` at ``img_size`` (default: the config's own image size)."""
    img_size = img_size or cfg.img_size
    grids = cfg.grids(img_size)
    parts = [("stem", _conv(cfg.in_chans, cfg.stages[0].dim, cfg.stem, grids[0])
              + _norm(cfg.downsample_norm, cfg.stages[0].dim), None)]
    prev = cfg.stages[0].dim
    for i, (stage, grid) in enumerate(zip(cfg.stages, grids)):
        total = Count()
        if i > 0:
            total = _norm(cfg.downsample_norm, prev) + _conv(prev, stage.dim, cfg.downsample, grid)
        for mixer in stage.block_mixers():
            total = total + _block(stage, mixer, grid)
        parts.append((f"stage{i}", total, grid))
        prev = stage.dim
    parts.append(("head", _head(cfg), None))
    costs = tuple(PartCost(name, c.params, c.frozen, c.macs, grid) for name, c, grid in parts)
    return ModelCost(img_size, sum(p.params for p in costs), sum(p.frozen_params for p in costs),
                     sum(p.macs for p in costs), costs)
