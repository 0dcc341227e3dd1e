"""The search-space YAML: typed sections, validated before anything starts.

Sections: ``data``, ``train``, ``space``, ``constraints``, ``baselines``, ``objectives``,
``search``, ``scheduler``, ``resources`` (see search_spaces/mixer_per_stage.yaml, commented).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from ..yamlio import load_yaml_file

from ..data.config import DataConfig
from ..errors import ConfigError
from ..config import StageConfig
from ..schema import _type_hints, describe, non_negative, parse, parse_dataclass, positive
from ..training.recipes import RECIPES, TrainConfig, resolve_recipe
from .values import Choice, Dimension, Fixed, Range, Shared, parse_dimension

ALGORITHMS = ("random", "grid", "optuna-tpe", "optuna-nsga2", "one-shot")
STAGE_DIMENSIONS = ("mixer", "depth", "dim", "mlp_ratio", "mlp_act", "norm", "res_scale_init", "layer_scale_init")
GLOBAL_DIMENSIONS = ("drop_path_rate", "head", "stem")
METRICS = ("val/acc1", "val/acc5", "val/loss", "train/loss", "cost/macs", "cost/params", "cost/frozen_params",
           "cost/latency_ms")


@dataclasses.dataclass(frozen=True)
class TrainSection:
    recipe: str = "small"
    epochs: int = dataclasses.field(default=3, metadata={"check": positive})  # the full fidelity
    overrides: dict = dataclasses.field(default_factory=dict)  # any recipe field, e.g. {lr: 0.002}


@dataclasses.dataclass(frozen=True)
class Objective:
    metric: str
    mode: Literal["max", "min"]


@dataclasses.dataclass(frozen=True)
class OneShotSection:
    """``search.oneshot``: how the supernet of a ``one-shot`` search is trained (``mfsearch.oneshot``)."""

    # fair: every mixer choice of every block once per step (FairNAS); uniform: single path (SPOS);
    # sandwich: largest + smallest + random paths (BigNAS).
    sampling: Literal["fair", "uniform", "sandwich"] = "fair"
    paths_per_step: int | None = dataclasses.field(default=None, metadata={"check": positive})  # None: the rule's
    # The stand-alone training a member's inherited accuracy stands in for: `confirm` trains the front
    # EPOCHS_FACTOR x this many epochs by default (the supernet's own epochs are no stand-alone budget).
    standalone_epochs: int = dataclasses.field(default=2, metadata={"check": positive})


@dataclasses.dataclass(frozen=True)
class SearchSection:
    # one-shot: train one weight-sharing supernet, then evaluate num_samples sub-networks with
    # inherited weights (exhaustive when the space is that small, else NSGA-II); the rest train each
    # candidate from scratch.
    algorithm: Literal["random", "grid", "optuna-tpe", "optuna-nsga2", "one-shot"] = "random"
    num_samples: int = dataclasses.field(default=8, metadata={"check": non_negative})  # searched (0: baselines only)
    seed: int = 0
    # Retries per trial: a trial whose node dies (or fails once for any reason) runs again, continuing
    # from its last checkpoint; one deterministic failure costs about one more epoch.
    max_failures: int = dataclasses.field(default=1, metadata={"check": non_negative})
    max_rejections: int = dataclasses.field(default=1000, metadata={"check": positive})  # per suggestion
    oneshot: OneShotSection = OneShotSection()


@dataclasses.dataclass(frozen=True)
class SchedulerSection:
    # auto: mo-asha with two or more objectives, fifo with one. mo-asha promotes by Pareto rank over
    # all objectives; asha by the first objective alone. Neither ever stops a baseline trial.
    name: Literal["auto", "fifo", "asha", "mo-asha"] = "auto"
    grace_period: int = dataclasses.field(default=1, metadata={"check": positive})
    reduction_factor: float = dataclasses.field(default=2.0, metadata={"check": lambda v: None if v > 1 else "must be > 1"})


@dataclasses.dataclass(frozen=True)
class ResourcesSection:
    cpus_per_trial: float = dataclasses.field(default=1.0, metadata={"check": positive})
    gpus_per_trial: float = dataclasses.field(default=0.0, metadata={"check": non_negative})
    max_concurrent: int | None = dataclasses.field(default=None, metadata={"check": positive})  # None: as resources allow


@dataclasses.dataclass(frozen=True)
class Constraints:
    min_macs: float | None = None
    max_macs: float | None = None
    min_params: float | None = None
    max_params: float | None = None

    def violation(self, params: int, macs: int) -> str | None:
        for name, value, low, high in (("MACs", macs, self.min_macs, self.max_macs),
                                       ("params", params, self.min_params, self.max_params)):
            if low is not None and value < low:
                return f"{name} {value:,} < min {low:,.0f}"
            if high is not None and value > high:
                return f"{name} {value:,} > max {high:,.0f}"
        return None


@dataclasses.dataclass(frozen=True)
class BaselinesSection:
    # The paper's families at the space's base depths/dims (the first option of each stage's
    # depth and dim unless given here), with their paper-exact norms and heads.
    families: tuple[Literal["identityformer", "randformer", "poolformerv2", "convformer", "caformer"], ...] = (
        "identityformer", "randformer", "poolformerv2", "convformer", "caformer")
    depth: tuple[int, ...] | None = None
    dim: tuple[int, ...] | None = None
    presets: tuple[str, ...] = ()       # also (or instead) any preset, at the space's image size
    configs: tuple[dict, ...] = ()      # explicit arch configs (tagged "custom")


@dataclasses.dataclass(frozen=True)
class ArchSpace:
    stages: tuple[dict[str, Dimension], ...]
    globals: dict[str, Dimension]
    shared: dict[str, Dimension]
    fixed: dict[str, Any]            # arch fields every candidate shares (stem, downsample, head...)
    per_block_mixers: bool = False   # opt-in: each block samples its own mixer from the stage's choice


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    name: str
    data: DataConfig
    train: TrainSection
    recipe: TrainConfig
    space: ArchSpace
    constraints: Constraints
    baselines: BaselinesSection
    objectives: tuple[Objective, ...]
    search: SearchSection
    scheduler: SchedulerSection
    resources: ResourcesSection
    source: str
    raw: dict


SECTIONS = ("name", "data", "train", "space", "constraints", "baselines", "objectives", "search", "scheduler",
            "resources")


def load_search_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> SearchSpec:
    """Read and validate a search-space YAML; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"search-space file not found: {path}")
    raw = load_yaml_file(path)  # size cap, alias bombs, bad YAML: one ConfigError naming the file
    try:
        return parse_search_spec(raw, str(path), overrides or {})
    except ConfigError as err:
        raise err.with_source(str(path)) from None


def parse_search_spec(raw: Any, source: str, overrides: dict[str, Any]) -> SearchSpec:
    if not isinstance(raw, dict):
        raise ConfigError("", "expected a mapping with sections " + ", ".join(SECTIONS))
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(str(key), f"unknown section; allowed: {', '.join(SECTIONS)}")
    raw = _apply_overrides(raw, overrides)
    data = parse_dataclass(DataConfig, raw.get("data") or {}, "data")
    train = parse_dataclass(TrainSection, raw.get("train") or {}, "train")
    if train.recipe not in RECIPES:
        raise ConfigError("train.recipe", f"{train.recipe!r} is not one of {', '.join(RECIPES)}")
    try:
        recipe = resolve_recipe(train.recipe, None, {**train.overrides, "epochs": train.epochs})
    except ConfigError as err:
        raise ConfigError(f"train.overrides.{err.path}", err.message) from None
    if "space" not in raw:
        raise ConfigError("space", "required: the architecture choices to search")
    space = _parse_space(raw["space"])
    objectives = _parse_objectives(raw.get("objectives"))
    search = parse_dataclass(SearchSection, raw.get("search") or {}, "search")
    return SearchSpec(
        name=str(raw.get("name") or Path(source).stem), data=data, train=train, recipe=recipe, space=space,
        constraints=parse_dataclass(Constraints, raw.get("constraints") or {}, "constraints"),
        baselines=_parse_baselines(raw.get("baselines", "paper"), space),
        objectives=objectives, search=search,
        scheduler=_resolve_scheduler(parse_dataclass(SchedulerSection, raw.get("scheduler") or {}, "scheduler"),
                                     objectives),
        resources=parse_dataclass(ResourcesSection, raw.get("resources") or {}, "resources"),
        source=source, raw=raw)


def _resolve_scheduler(section: SchedulerSection, objectives: tuple[Objective, ...]) -> SchedulerSection:
    if section.name != "auto":
        return section
    return dataclasses.replace(section, name="mo-asha" if len(objectives) >= 2 else "fifo")


def _apply_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """Command-line overrides as dotted paths (``search.num_samples``)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for dotted, value in overrides.items():
        section, _, field = dotted.partition(".")
        if section not in SECTIONS or (section != "name" and not field):
            raise ConfigError(f"--set {dotted}", f"unknown section {section!r}; allowed: {', '.join(SECTIONS)} "
                                                 "(as section.field=value)" if section not in SECTIONS else
                                                 "expected section.field=value")
        node = raw.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(section, "expected a mapping")
        node[field] = value
    return raw


def _parse_space(raw: Any) -> ArchSpace:
    if not isinstance(raw, dict):
        raise ConfigError("space", "expected a mapping with `stages` (one mapping of choices per stage)")
    allowed = ("stages", "shared", "fixed", "per_block_mixers") + STAGE_DIMENSIONS + GLOBAL_DIMENSIONS
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"space.{key}", f"unknown field; allowed: {', '.join(allowed)}")
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ConfigError("space.stages", "required: a non-empty list with one mapping of choices per stage")
    shared = {}
    for name, value in (raw.get("shared") or {}).items():
        shared[name] = parse_dimension(value, f"space.shared.{name}", allow_shared=False)
    top = {k: parse_dimension(raw[k], f"space.{k}") for k in STAGE_DIMENSIONS if k in raw}
    stages = []
    for i, stage in enumerate(stages_raw):
        path = f"space.stages[{i}]"
        if not isinstance(stage, dict):
            raise ConfigError(path, "expected a mapping of choices, e.g. {mixer: [pooling, sepconv], depth: [1, 2]}")
        for key in stage:
            if key not in STAGE_DIMENSIONS:
                raise ConfigError(f"{path}.{key}", f"unknown field; allowed: {', '.join(STAGE_DIMENSIONS)}")
        dims = {**top, **{k: parse_dimension(v, f"{path}.{k}") for k, v in stage.items()}}
        for key in ("depth", "dim"):
            if key not in dims:
                raise ConfigError(f"{path}.{key}", "required (a value, a list of choices or a range)")
        for key, dim in dims.items():
            _check_options(key, dim, f"{path}.{key}")
            if isinstance(dim, Shared) and dim.name not in shared:
                raise ConfigError(f"{path}.{key}.shared", f"no choice named {dim.name!r} in space.shared; "
                                                          f"defined: {', '.join(shared) or 'none'}")
        stages.append(dims)
    globals_ = {k: parse_dimension(raw[k], f"space.{k}") for k in GLOBAL_DIMENSIONS if k in raw}
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ConfigError("space.fixed", "expected a mapping of architecture fields")
    per_block = raw.get("per_block_mixers", False)
    if not isinstance(per_block, bool):
        raise ConfigError("space.per_block_mixers", "expected true or false")
    return ArchSpace(tuple(stages), globals_, shared, dict(fixed), per_block)


def _check_options(key: str, dim: Dimension, path: str) -> None:
    """Every option of a stage dimension must be a valid value of that stage field."""
    hint = _type_hints(StageConfig)[key]
    if isinstance(dim, Fixed):
        parse(hint, dim.value, path)
    elif isinstance(dim, Choice):
        for option in dim.options:
            parse(hint, option, path)
    elif isinstance(dim, Range) and key in ("mixer", "mlp_act", "norm"):
        raise ConfigError(path, f"a range makes no sense for {key}; give a list of choices")


def _parse_objectives(raw: Any) -> tuple[Objective, ...]:
    if raw is None:
        raw = [{"metric": "val/acc1", "mode": "max"}, {"metric": "cost/macs", "mode": "min"}]
    if not isinstance(raw, list) or not raw:
        raise ConfigError("objectives", "expected a non-empty list like [{metric: val/acc1, mode: max}]")
    out = []
    for i, item in enumerate(raw):
        obj = parse_dataclass(Objective, item, f"objectives[{i}]")
        if obj.metric not in METRICS:
            raise ConfigError(f"objectives[{i}].metric", f"{obj.metric!r} is not one of {', '.join(METRICS)}")
        out.append(obj)
    if not out[0].metric.startswith(("val/", "train/")):
        raise ConfigError("objectives[0].metric", "the first objective must be a trained metric (e.g. val/acc1): "
                                                  "the scheduler stops trials on it")
    return tuple(out)


def _parse_baselines(raw: Any, space: ArchSpace) -> BaselinesSection:
    if raw in ("paper", True):
        return BaselinesSection()
    if raw in ("none", None, False, []):
        return BaselinesSection(families=())
    if isinstance(raw, dict):
        spec = parse_dataclass(BaselinesSection, raw, "baselines")
        if "families" not in raw and (spec.presets or spec.configs):
            spec = dataclasses.replace(spec, families=())
        n = len(space.stages)
        for key in ("depth", "dim"):
            value = getattr(spec, key)
            if value is not None and len(value) != n:
                raise ConfigError(f"baselines.{key}", f"has {len(value)} values but the space has {n} stages")
        return spec
    raise ConfigError("baselines", f"expected 'paper', 'none' or a mapping with families/presets/configs, got {describe(raw)}")
