"""The typed, frozen architecture config, validated once at the edge.

YAML form (every stage field may also be given at the top level: a single value broadcasts to all
stages, a list gives one value per stage — the one place where broadcasting happens)::

    num_classes: 10
    img_size: 32
    depth: [2, 2, 6, 2]
    dim: [64, 128, 320, 512]
    mixer: [identity, identity, random, random]
    norm: groupnorm1
    res_scale_init: [null, null, 1.0, 1.0]

or with explicit stages (a stage's ``mixer`` may be a list: one mixer per block)::

    stages:
      - {depth: 2, dim: 64, mixer: sepconv}
      - {depth: 2, dim: 128, mixer: [sepconv, attention]}
"""
from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from .yamlio import load_yaml_file

from .errors import ConfigError
from .layers.activations import ActSpec
from .layers.count import conv_out
from .layers.mixers import MixerSpec
from .layers.norms import NormSpec
from .schema import (describe, field_names, join_path, non_negative, parse_dataclass, positive,
                     probability, to_plain)


def _act(name: str) -> ActSpec:
    return ActSpec.parse(name, "")


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A strided conv (stem or downsampling)."""

    kernel_size: int = dataclasses.field(default=3, metadata={"check": positive})
    stride: int = dataclasses.field(default=2, metadata={"check": positive})
    padding: int = dataclasses.field(default=1, metadata={"check": non_negative})


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Classifier after global average pooling and the output norm."""

    type: Literal["linear", "mlp"] = "linear"
    mlp_ratio: float = dataclasses.field(default=4.0, metadata={"check": positive})  # mlp only
    act: ActSpec = dataclasses.field(default_factory=lambda: _act("squared_relu"))  # mlp only
    dropout: float = dataclasses.field(default=0.0, metadata={"check": probability})  # before the last fc
    norm_eps: float = dataclasses.field(default=1e-5, metadata={"check": positive})  # LN inside the mlp head


# Validation, costing and building visit every block: a stage of 10⁸ blocks took minutes before
# anything refused it. The deepest published MetaFormer stage has 18 blocks.
MAX_DEPTH = 1000


def _depth(value: int) -> str | None:
    return positive(value) or (None if value <= MAX_DEPTH else f"must be at most {MAX_DEPTH}")


@dataclasses.dataclass(frozen=True)
class StageConfig:
    depth: int = dataclasses.field(metadata={"check": _depth})
    dim: int = dataclasses.field(metadata={"check": positive})
    # One mixer for every block, or a list with one mixer per block.
    mixer: MixerSpec | tuple[MixerSpec, ...] = dataclasses.field(
        default_factory=lambda: MixerSpec.parse("identity", ""))
    mlp_ratio: float = dataclasses.field(default=4.0, metadata={"check": positive})
    mlp_act: ActSpec = dataclasses.field(default_factory=lambda: _act("starrelu"))
    mlp_bias: bool = False
    norm: NormSpec = dataclasses.field(default_factory=lambda: NormSpec.parse("layernorm", ""))
    # ResScale scales the skip branch (NormFormer); LayerScale scales the residual (CaiT). null = off.
    res_scale_init: float | None = None
    layer_scale_init: float | None = None

    def block_mixers(self) -> tuple[MixerSpec, ...]:
        return self.mixer if isinstance(self.mixer, tuple) else (self.mixer,) * self.depth


STAGE_FIELDS = tuple(field_names(StageConfig))


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    stages: tuple[StageConfig, ...]
    in_chans: int = dataclasses.field(default=3, metadata={"check": positive})
    num_classes: int = dataclasses.field(default=1000, metadata={"check": non_negative})  # 0: features only
    img_size: int = dataclasses.field(default=224, metadata={"check": positive})  # square input, pixels
    stem: ConvSpec = ConvSpec(kernel_size=7, stride=4, padding=2)
    downsample: ConvSpec = ConvSpec(kernel_size=3, stride=2, padding=1)
    # Norm after the stem conv and before each downsampling conv (channel LN, no bias, in the paper).
    downsample_norm: NormSpec = dataclasses.field(default_factory=lambda: NormSpec.parse("layernorm", ""))
    head: HeadConfig = HeadConfig()
    # Stochastic depth, rising linearly from 0 to this over all blocks.
    drop_path_rate: float = dataclasses.field(default=0.0, metadata={"check": probability})
    output_norm: bool = True  # LayerNorm (with bias, eps 1e-6) after global pooling

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def grids(self, img_size: int | None = None) -> list[tuple[int, int]]:
        """Each stage's (H, W) at ``img_size`` (default: the config's)."""
        size = conv_out(img_size or self.img_size, *self._conv(self.stem))
        sizes = [size]
        for _ in self.stages[1:]:
            size = conv_out(size, *self._conv(self.downsample))
            sizes.append(size)
        return [(s, s) for s in sizes]

    @staticmethod
    def _conv(c: ConvSpec) -> tuple[int, int, int]:
        return c.kernel_size, c.stride, c.padding

    def to_dict(self) -> dict:
        return to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def replace(self, **overrides: Any) -> "ArchConfig":
        return apply_overrides(self, overrides)


def parse_arch(raw: Any, source: str | None = None) -> ArchConfig:
    """Validate raw data (from YAML or Python) into an ArchConfig; errors name the field."""
    try:
        cfg = parse_dataclass(ArchConfig, _broadcast_stage_fields(raw), "")
        check_arch(cfg)
        return cfg
    except ConfigError as err:
        raise err.with_source(source) if source else err


def _broadcast_stage_fields(raw: Any) -> Any:
    """Fold top-level stage fields (single value or one per stage) into ``stages``."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    shared = {k: raw.pop(k) for k in STAGE_FIELDS if k in raw}
    if "stages" in raw:
        stages = raw["stages"]
        if not isinstance(stages, list) or not stages:
            raise ConfigError("stages", f"expected a non-empty list of stage mappings, got {describe(stages)}")
        stages = [dict(s) if isinstance(s, dict) else s for s in stages]
    else:
        # The stage count comes from `depth` (then `dim`, then any list) so a wrong length elsewhere
        # is reported on the field that has it.
        lists = [shared[k] for k in ("depth", "dim") if isinstance(shared.get(k), list)]
        lists += [v for v in shared.values() if isinstance(v, list)]
        if not lists:
            raise ConfigError("stages", "required: give `stages`, or per-stage lists such as "
                                        "`depth: [2, 2, 6, 2]` and `dim: [64, 128, 320, 512]`")
        stages = [{} for _ in lists[0]]
    for key, value in shared.items():
        if isinstance(value, list):
            if len(value) != len(stages):
                raise ConfigError(key, f"has {len(value)} values but there are {len(stages)} stages; "
                                       "give one value per stage or a single value for all")
            values = value
        else:
            values = [value] * len(stages)
        for i, (stage, v) in enumerate(zip(stages, values)):
            if isinstance(stage, dict):
                stage.setdefault(key, v)
    raw["stages"] = stages
    return raw


def check_arch(cfg: ArchConfig) -> None:
    """Cross-field rules that single fields cannot express."""
    grids = cfg.grids()
    for i, (stage, grid) in enumerate(zip(cfg.stages, grids)):
        path = f"stages[{i}]"
        if grid[0] < 1:
            raise ConfigError("img_size", f"{cfg.img_size} px is too small: stage {i} would have no "
                                          f"tokens after the stem and {i} downsamplings")
        if isinstance(stage.mixer, tuple) and len(stage.mixer) != stage.depth:
            raise ConfigError(f"{path}.mixer", f"lists {len(stage.mixer)} per-block mixers but the "
                                               f"stage depth is {stage.depth}")
        for j, spec in enumerate(stage.block_mixers()):
            problem = spec.cls.validate(stage.dim, grid, spec.params)
            if problem:
                mpath = f"{path}.mixer" + (f"[{j}]" if isinstance(stage.mixer, tuple) else "")
                raise ConfigError(f"{mpath}.{problem[0]}", problem[1])


def load_arch_yaml(path: str | Path) -> ArchConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"architecture file not found: {path}", None)
    raw = load_yaml_file(path)  # size cap, alias bombs, bad YAML: one ConfigError naming the file
    if isinstance(raw, dict) and "arch" in raw and len(raw) == 1:
        raw = raw["arch"]
    return parse_arch(raw, source=str(path))


_KEY = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+)\])?$")


def apply_overrides(cfg: ArchConfig, overrides: dict[str, Any]) -> ArchConfig:
    """Return ``cfg`` with ``overrides`` applied, revalidated.

    Keys are top-level fields (``num_classes``), stage fields broadcast to every stage
    (``mlp_act``), or dotted paths (``head.dropout``, ``stages[2].mixer``).
    """
    if not overrides:
        return cfg
    raw = copy.deepcopy(cfg.to_dict())
    for key, value in overrides.items():
        if key in STAGE_FIELDS:
            # A list gives one value per stage, exactly as at the top level of a YAML file.
            if isinstance(value, list) and len(value) != len(raw["stages"]):
                raise ConfigError(key, f"has {len(value)} values but there are {len(raw['stages'])} stages")
            for i, stage in enumerate(raw["stages"]):
                stage[key] = value[i] if isinstance(value, list) else value
            continue
        _set_path(raw, key, value)
    return parse_arch(raw)


def _set_path(raw: dict, dotted: str, value: Any) -> None:
    node: Any = raw
    parts = dotted.split(".")
    walked = ""
    for n, part in enumerate(parts):
        m = _KEY.match(part)
        if not m or not isinstance(node, dict):
            raise ConfigError(dotted, "not a valid field path (e.g. `head.dropout`, `stages[2].mixer`)")
        name, index = m.group(1), m.group(2)
        last = n == len(parts) - 1
        if name not in node and not (last and index is None):
            raise ConfigError(join_path(walked, name), f"unknown field; allowed: {', '.join(node)}")
        walked = join_path(walked, name)
        if index is not None:
            seq = node[name]
            if not isinstance(seq, list) or int(index) >= len(seq):
                raise ConfigError(walked, f"has no item [{index}]")
            if last:
                seq[int(index)] = value
                return
            node = seq[int(index)]
            walked = join_path(walked, int(index))
        elif last:
            node[name] = value
        else:
            if not isinstance(node[name], dict):
                node[name] = {"name": node[name]} if isinstance(node[name], str) else node[name]
            node = node[name]
