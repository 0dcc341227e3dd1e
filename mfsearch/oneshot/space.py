"""A search space seen as the members of one supernet: which choices it may hold, member configs
and their costs (cached), the supernet itself, and the paper families' mixer patterns in it.

Candidates are the same flat parameter dicts as a from-scratch sweep's (``search.candidates``), so
the space YAML, constraints, shared choices and per-block mixers mean the same thing here.
"""
from __future__ import annotations

import itertools
import random
from typing import Any

from ..config import ArchConfig, parse_arch
from ..cost import ModelCost, count_config
from ..errors import ConfigError
from ..layers.mixers import MixerSpec
from ..presets import family_arch
from ..search.candidates import base_depths_dims, build_arch, dimensions, sample_params
from ..search.space import SearchSpec
from ..search.values import Choice, Dimension, Fixed, Shared
from .supernet import ELASTIC_FIELDS, StageChoices, SuperNet


def _resolve(dim: Dimension, spec: SearchSpec) -> Dimension:
    return spec.space.shared[dim.name] if isinstance(dim, Shared) else dim


def _options(dim: Dimension) -> list[Any]:
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choice):
        return list(dim.options)
    return [dim.low, dim.high]   # a numeric range: its ends bound the supernet


def check_oneshot_space(spec: SearchSpec) -> None:
    """Refuse, naming the field, what a supernet cannot share weights over."""
    for i, stage in enumerate(spec.space.stages):
        for key, dim in stage.items():
            if key not in ELASTIC_FIELDS and not isinstance(_resolve(dim, spec), Fixed):
                raise ConfigError(f"space.stages[{i}].{key}",
                                  f"one-shot search varies only {', '.join(ELASTIC_FIELDS)} between sub-networks "
                                  f"(they share one skeleton); fix {key} to one value or use a from-scratch "
                                  "search.algorithm (random, grid, optuna-tpe, optuna-nsga2)")
    for key, dim in spec.space.globals.items():
        if not isinstance(dim, Fixed):
            raise ConfigError(f"space.{key}", "one-shot search needs it fixed (every sub-network shares it)")
    for obj in spec.objectives:
        if obj.metric.startswith("train/") or obj.metric == "val/acc5":
            raise ConfigError("objectives", f"{obj.metric} is not measured on inherited weights; "
                                            "one-shot objectives: val/acc1, val/loss, cost/*")


class OneShotSpace:
    """The members of a space's supernet at a dataset's class count and image size."""

    def __init__(self, spec: SearchSpec, num_classes: int, img_size: int):
        check_oneshot_space(spec)
        self.spec, self.num_classes, self.img_size = spec, num_classes, img_size
        self.dims = dimensions(spec.space)
        self._cache: dict[str, tuple[ArchConfig, ModelCost] | str] = {}

    # --- members ------------------------------------------------------------------------------
    def member(self, params: dict[str, Any]) -> tuple[ArchConfig, ModelCost] | str:
        """(config, cost) of a candidate, or why it may not be trained (invalid or a constraint)."""
        key = repr(sorted(params.items(), key=lambda kv: kv[0]))
        if key not in self._cache:
            try:
                cfg = parse_arch(build_arch(self.spec.space, params, self.num_classes, self.img_size))
            except ConfigError as err:
                self._cache[key] = f"invalid: {err}"
            else:
                cost = count_config(cfg)
                why = self.spec.constraints.violation(cost.params, cost.macs)
                self._cache[key] = why if why else (cfg, cost)
        return self._cache[key]

    def mixer_dimensions(self) -> list[str]:
        """Flat names of the dimensions that choose a mixer (a shared choice counts once)."""
        names = []
        for i, stage in enumerate(self.spec.space.stages):
            dim = stage.get("mixer")
            if isinstance(dim, Shared):
                names.append(f"shared.{dim.name}")
            elif self.spec.space.per_block_mixers:
                names += [n for n in self.dims if n.startswith(f"stage{i}.block") and n.endswith(".mixer")]
            elif dim is not None:
                names.append(f"stage{i}.mixer")
        return [n for n in dict.fromkeys(names) if isinstance(self.dims.get(n), Choice)]

    def extreme(self, params: dict[str, Any], largest: bool) -> dict[str, Any]:
        """``params`` with every numeric dimension (depth, dim, mlp_ratio, ...) at its max or min."""
        out = dict(params)
        for name, dim in self.dims.items():
            values = _options(dim)
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                out[name] = max(values) if largest else min(values)
        return out

    # --- the supernet -------------------------------------------------------------------------
    def stage_choices(self) -> list[StageChoices]:
        out = []
        for i, stage in enumerate(self.spec.space.stages):
            mixers = [MixerSpec.parse(m, f"space.stages[{i}].mixer")
                      for m in _options(_resolve(stage.get("mixer", Fixed("identity")), self.spec))]
            value = {k: max(_options(_resolve(stage[k], self.spec))) if k in stage else None
                     for k in ("depth", "dim", "mlp_ratio")}
            out.append(StageChoices(tuple(dict((str(m), m) for m in mixers).values()), int(value["depth"]),
                                    int(value["dim"]), float(value["mlp_ratio"] or 4.0)))
        return out

    def skeleton(self) -> ArchConfig:
        """A valid member's config: the fields every member shares (its elastic values do not matter).

        The first option of every dimension, else the first valid random member (the first options
        may be invalid together, e.g. attention at a dim its head_dim does not divide)."""
        first = {name: _options(dim)[0] for name, dim in self.dims.items()}
        rng = random.Random(0)
        for params in itertools.chain([first], (sample_params(self.spec.space, rng) for _ in range(2000))):
            try:
                return parse_arch(build_arch(self.spec.space, params, self.num_classes, self.img_size))
            except ConfigError as err:
                last = err
        raise ConfigError("space", f"no valid architecture in 2000 random members of the space (e.g. {last})")

    def build_supernet(self) -> SuperNet:
        return SuperNet(self.skeleton(), self.stage_choices())

    # --- baselines ----------------------------------------------------------------------------
    def family_members(self, supernet: SuperNet) -> tuple[dict[str, ArchConfig], dict[str, str]]:
        """Each baseline family's token-mixer pattern at the space's base depths and dims, as a member
        (its norms and head are the space's: inherited accuracies compare within one skeleton), and
        why a family is left out (a mixer the stage does not offer, or a constraint)."""
        base = self.spec.baselines
        depths, dims = base_depths_dims(self.spec.space, base.depth, base.dim)
        ratios = [float(_options(_resolve(s["mlp_ratio"], self.spec))[0]) if "mlp_ratio" in s else 4.0
                  for s in self.spec.space.stages]
        members, skipped = {}, {}
        for family in base.families:
            try:
                paper = parse_arch(family_arch(family, depths, dims, num_classes=self.num_classes,
                                               img_size=self.img_size))
                cfg = supernet.member(depths, dims, ratios, [s.block_mixers() for s in paper.stages])
                cfg = parse_arch(cfg.to_dict())
                supernet.check_member(cfg)
            except (ConfigError, ValueError) as err:
                skipped[family] = str(err)
                continue
            cost = count_config(cfg)
            why = self.spec.constraints.violation(cost.params, cost.macs)
            if why:
                skipped[family] = why
            else:
                members[family] = cfg
        return members, skipped


def params_of(cfg: ArchConfig) -> dict[str, Any]:
    """A member's per-stage values, flat (``stage0.mixer`` ...) for tables and MLflow params."""
    out: dict[str, Any] = {}
    for i, s in enumerate(cfg.stages):
        mixers = s.block_mixers()
        out[f"stage{i}.mixer"] = "+".join(map(str, mixers)) if len(set(map(str, mixers))) > 1 else str(mixers[0])
        out.update({f"stage{i}.depth": s.depth, f"stage{i}.dim": s.dim, f"stage{i}.mlp_ratio": s.mlp_ratio})
    return out


def arch_key(cfg: ArchConfig) -> str:
    return " | ".join(f"{v}" for v in params_of(cfg).values())


__all__ = ["OneShotSpace", "arch_key", "check_oneshot_space", "params_of"]
