"""From a search space to concrete, costed candidate architectures (pure functions, no Ray).

A candidate is a flat dict of sampled parameters (``stage0.mixer``, ``stage2.depth``,
``shared.width``, ``drop_path_rate``, ...) that ``build_arch`` turns into an arch config.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Any

from ..config import ArchConfig, parse_arch
from ..cost import ModelCost, count_config
from ..errors import ConfigError
from ..presets import family_arch, preset_raw
from .space import ArchSpace, SearchSpec
from .values import Choice, Dimension, Fixed, Shared, grid_product

SEARCHED = "searched"


@dataclasses.dataclass(frozen=True)
class Candidate:
    family: str                 # "searched", a paper family, "preset:<name>" or "custom"
    arch: dict                  # raw arch config (num_classes and img_size included)
    params: dict                # sampled parameters (empty for baselines)


def dimensions(space: ArchSpace) -> dict[str, Dimension]:
    """Every free parameter of the space by flat name (shared choices appear once)."""
    out: dict[str, Dimension] = {f"shared.{k}": v for k, v in space.shared.items()}
    for i, stage in enumerate(space.stages):
        for key, dim in stage.items():
            if isinstance(dim, Shared):
                continue
            if key == "mixer" and space.per_block_mixers:
                for j in range(_max_value(stage["depth"], space)):
                    out[f"stage{i}.block{j}.mixer"] = dim
            else:
                out[f"stage{i}.{key}"] = dim
    out.update(space.globals)
    return {k: v for k, v in out.items()}


def _max_value(dim: Dimension, space: ArchSpace) -> int:
    if isinstance(dim, Shared):
        dim = space.shared[dim.name]
    if isinstance(dim, Fixed):
        return int(dim.value)
    if isinstance(dim, Choice):
        return int(max(dim.options))
    return int(dim.high)


def sample_params(space: ArchSpace, rng: random.Random) -> dict[str, Any]:
    return {name: dim.sample(rng) for name, dim in dimensions(space).items()}


def grid_params(space: ArchSpace) -> list[dict[str, Any]]:
    return grid_product(dimensions(space))


def build_arch(space: ArchSpace, params: dict[str, Any], num_classes: int, img_size: int) -> dict:
    stages = []
    for i, stage in enumerate(space.stages):
        out = {}
        for key, dim in stage.items():
            if isinstance(dim, Shared):
                out[key] = params[f"shared.{dim.name}"]
            elif key == "mixer" and space.per_block_mixers:
                continue
            elif isinstance(dim, Fixed):
                out[key] = params.get(f"stage{i}.{key}", dim.value)
            else:
                out[key] = params[f"stage{i}.{key}"]
        if space.per_block_mixers:
            out["mixer"] = [params[f"stage{i}.block{j}.mixer"] for j in range(int(out["depth"]))]
        stages.append(out)
    arch = {**space.fixed, "num_classes": num_classes, "img_size": img_size, "stages": stages}
    for key in space.globals:
        value = params[key]
        arch[key] = {"type": value} if key == "head" and isinstance(value, str) else value
    return arch


def base_depths_dims(space: ArchSpace, spec_depth, spec_dim) -> tuple[list[int], list[int]]:
    """The space's base architecture: the first option of every stage's depth and dim."""
    def first(dim: Dimension) -> Any:
        if isinstance(dim, Shared):
            dim = space.shared[dim.name]
        if isinstance(dim, Fixed):
            return dim.value
        if isinstance(dim, Choice):
            return dim.options[0]
        return dim.low
    depths = list(spec_depth) if spec_depth else [int(first(s["depth"])) for s in space.stages]
    dims = list(spec_dim) if spec_dim else [int(first(s["dim"])) for s in space.stages]
    return depths, dims


def baseline_candidates(spec: SearchSpec, num_classes: int, img_size: int) -> list[Candidate]:
    b = spec.baselines
    depths, dims = base_depths_dims(spec.space, b.depth, b.dim)
    shared_fields = {k: v for k, v in spec.space.fixed.items() if k in ("stem", "downsample", "in_chans")}
    out = []
    for family in b.families:
        arch = family_arch(family, depths, dims, num_classes=num_classes, img_size=img_size, **shared_fields)
        out.append(Candidate(family, arch, {}))
    for name in b.presets:
        out.append(Candidate(f"preset:{name}", {**preset_raw(name), "num_classes": num_classes, "img_size": img_size}, {}))
    for raw in b.configs:
        out.append(Candidate("custom", {**raw, "num_classes": num_classes, "img_size": img_size}, {}))
    for i, cand in enumerate(out):
        try:
            parse_arch(cand.arch)
        except ConfigError as err:
            raise ConfigError(f"baselines ({cand.family}).{err.path}", err.message) from None
    return out


def evaluate(arch: dict) -> tuple[ArchConfig, ModelCost]:
    """Validate and cost a raw arch; raises ConfigError when it is not a valid architecture."""
    cfg = parse_arch(arch)
    return cfg, count_config(cfg)


def check_candidate(spec: SearchSpec, arch: dict) -> str | None:
    """None when the candidate may be trained, else why not (invalid or outside constraints)."""
    try:
        _, cost = evaluate(arch)
    except ConfigError as err:
        return f"invalid: {err}"
    return spec.constraints.violation(cost.params, cost.macs)


def feasibility(spec: SearchSpec, num_classes: int, img_size: int, samples: int = 2000) -> tuple[int, int, dict]:
    """How many of ``samples`` random candidates pass (valid and within constraints), and the
    observed cost range — used to refuse spaces no candidate can satisfy before Ray starts."""
    rng = random.Random(spec.search.seed)
    ok, seen = 0, {"macs": [], "params": []}
    for _ in range(samples):
        arch = build_arch(spec.space, sample_params(spec.space, rng), num_classes, img_size)
        try:
            _, cost = evaluate(arch)
        except ConfigError:
            continue
        seen["macs"].append(cost.macs)
        seen["params"].append(cost.params)
        if spec.constraints.violation(cost.params, cost.macs) is None:
            ok += 1
    return ok, samples, {k: (min(v), max(v)) if v else None for k, v in seen.items()}


__all__ = ["Candidate", "SEARCHED", "baseline_candidates", "build_arch", "check_candidate", "dimensions",
           "evaluate", "feasibility", "grid_params", "sample_params"]
