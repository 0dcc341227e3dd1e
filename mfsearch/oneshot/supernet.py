"""A weight-sharing MetaFormer supernet of a search space: one set of weights, any sub-network.

Why a parameter store plus ``torch.func.functional_call`` instead of blocks that know how to slice
themselves (Once-for-All, AutoFormer): a sub-network runs *the* ``MetaFormer`` module built from
its own ``ArchConfig`` (on the meta device, cached), with its parameters taken as leading slices of
the supernet's. Its forward pass is therefore exactly that architecture's computation, and a mixer
added to ``MIXERS`` joins the supernet with no edit here: nothing in this file names a mixer.

Sharing (the documented choice):

- every block holds one set of token-mixer weights per mixer choice of its stage
  (``stages.i.blocks.j.token_mixer.<choice>.*``): different mixers never share weights (their
  parameters mean different things; SPOS does the same);
- the block's norms, MLP and scales are shared by all of its mixer choices (AutoFormer's "weight
  entanglement"): the MLP is mixer-agnostic, it gets every step's gradient instead of a fifth of
  them, and a mixer's inherited accuracy is measured with the MLP the others also trained;
- elastic depth: a stage of depth d runs its first d blocks;
- elastic width (``dim``, ``mlp_ratio`` choices): weight slicing, every tensor's leading part.
  Exact for linears, convs, norms and scales. One caveat: attention's fused ``qkv`` weight
  ``[3C, C]`` is sliced as one tensor, so a narrower sub-network's k rows are wider ones' q rows;
  still one consistent sharing, but entangled differently from AutoFormer's per-q/k/v slicing.

What may vary between sub-networks: per stage ``mixer``, ``depth``, ``dim``, ``mlp_ratio``
(``searchable_fields``). Everything else (norm, activation, scales, head, stem, drop path) is the
skeleton every sub-network shares; ``SuperNet.check_member`` refuses a config that differs there.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Iterable

import torch
from torch import nn
from torch.func import functional_call

from ..config import ArchConfig, StageConfig
from ..model import MetaFormer
from ..layers.mixers import MixerSpec

# Stage fields that may differ between sub-networks; all others are the shared skeleton.
ELASTIC_FIELDS = ("mixer", "depth", "dim", "mlp_ratio")
_MIXER_PARAM = re.compile(r"^(stages\.(\d+)\.blocks\.(\d+)\.token_mixer)\.(.+)$")


class NotASubnetwork(ValueError):
    """A config the supernet cannot run: another skeleton, a mixer it has no weights for, too big."""


def choice_key(spec: MixerSpec) -> str:
    """A ModuleDict-safe name for a mixer choice: ``sepconv``, ``sepconv_kernel_size_5``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(spec).replace("(", "_").replace(")", "").replace("=", "_")
                  .replace(", ", "_"))


@dataclasses.dataclass(frozen=True)
class StageChoices:
    """What one stage of the supernet allows."""

    mixers: tuple[MixerSpec, ...]
    max_depth: int
    max_dim: int
    max_mlp_ratio: float


def skeleton_key(cfg: ArchConfig) -> ArchConfig:
    """``cfg`` with its elastic fields blanked: two members of one supernet have the same key."""
    stages = tuple(dataclasses.replace(s, depth=1, dim=1, mlp_ratio=1.0, mixer=MixerSpec.parse("identity", ""))
                   for s in cfg.stages)
    return dataclasses.replace(cfg, stages=stages, drop_path_rate=0.0)


@functools.lru_cache(maxsize=512)
def _template(cfg: ArchConfig) -> MetaFormer:
    """The sub-network's module structure, without storage (its tensors are the supernet's slices)."""
    with torch.device("meta"):
        return MetaFormer(cfg)


class SuperNet(nn.Module):
    """All sub-networks of a space, sharing weights; ``forward(x)`` runs the active one.

    ``stages``: the choices of each stage; ``skeleton``: an ``ArchConfig`` giving every non-elastic
    field (its own elastic values are ignored). The weights are initialised as ``MetaFormer`` would
    initialise the largest member of each mixer choice.
    """

    def __init__(self, skeleton: ArchConfig, stages: Iterable[StageChoices]):
        super().__init__()
        self.choices = tuple(stages)
        if len(self.choices) != skeleton.num_stages:
            raise ValueError(f"{len(self.choices)} stage choices for a {skeleton.num_stages}-stage skeleton")
        self.skeleton = skeleton
        self.num_classes = skeleton.num_classes
        self._skeleton_key = skeleton_key(skeleton)
        self._keys = [{str(m): choice_key(m) for m in c.mixers} for c in self.choices]
        self.weights = nn.ParameterDict()   # flat: '.' in names replaced by '/'
        for template in self._init_templates():
            for name, p in template.named_parameters():
                key = self._store_name(name, template.arch)
                if key not in self.weights or p.numel() > self.weights[key].numel():
                    self.weights[key] = nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
        self.active: ArchConfig = self.largest(0)

    # --- members ------------------------------------------------------------------------------
    def _init_templates(self) -> list[MetaFormer]:
        """One real model per mixer choice index: every stage at its largest, with its c-th mixer."""
        out = []
        for c in range(max(len(s.mixers) for s in self.choices)):
            stages = [dataclasses.replace(base, depth=s.max_depth, dim=s.max_dim, mlp_ratio=s.max_mlp_ratio,
                                          mixer=s.mixers[min(c, len(s.mixers) - 1)])
                      for base, s in zip(self.skeleton.stages, self.choices)]
            torch.manual_seed(c)
            out.append(MetaFormer(dataclasses.replace(self.skeleton, stages=tuple(stages))))
        return out

    def largest(self, mixer_index: int = 0) -> ArchConfig:
        """The member with every stage at its largest, all blocks with mixer choice ``mixer_index``."""
        return self.member([s.max_depth for s in self.choices], [s.max_dim for s in self.choices],
                           [s.max_mlp_ratio for s in self.choices],
                           [[s.mixers[min(mixer_index, len(s.mixers) - 1)]] * s.max_depth for s in self.choices])

    def member(self, depths, dims, mlp_ratios, mixers) -> ArchConfig:
        """The member with these per-stage values (``mixers``: one list of per-block specs per stage)."""
        stages = []
        for base, d, c, r, m in zip(self.skeleton.stages, depths, dims, mlp_ratios, mixers):
            m = tuple(m)
            stages.append(dataclasses.replace(base, depth=int(d), dim=int(c), mlp_ratio=float(r),
                                              mixer=m[0] if len(set(map(str, m))) == 1 else m))
        return dataclasses.replace(self.skeleton, stages=tuple(stages))

    def check_member(self, cfg: ArchConfig) -> None:
        """Raise ``NotASubnetwork`` naming what makes ``cfg`` no member of this supernet."""
        if skeleton_key(cfg) != self._skeleton_key:
            raise NotASubnetwork("its skeleton (norms, activations, scales, head, stem, classes or image size) "
                                 "differs from the supernet's; only per-stage mixer, depth, dim and mlp_ratio vary")
        for i, (stage, allowed) in enumerate(zip(cfg.stages, self.choices)):
            if stage.depth > allowed.max_depth or stage.dim > allowed.max_dim or stage.mlp_ratio > allowed.max_mlp_ratio:
                raise NotASubnetwork(f"stage {i} is larger than the supernet's (depth {allowed.max_depth}, "
                                     f"dim {allowed.max_dim}, mlp_ratio {allowed.max_mlp_ratio:g})")
            for j, spec in enumerate(stage.block_mixers()):
                if str(spec) not in self._keys[i]:
                    raise NotASubnetwork(f"stages[{i}] block {j}: the supernet has no weights for mixer {spec}; "
                                         f"it has {', '.join(self._keys[i])}")

    # --- weights ------------------------------------------------------------------------------
    def _store_name(self, name: str, cfg: ArchConfig) -> str:
        m = _MIXER_PARAM.match(name)
        if m:
            stage, block = int(m.group(2)), int(m.group(3))
            spec = cfg.stages[stage].block_mixers()[block]
            name = f"{m.group(1)}.{self._keys[stage][str(spec)]}.{m.group(4)}"
        return name.replace(".", "/")

    def subnet_tensors(self, cfg: ArchConfig) -> dict[str, torch.Tensor]:
        """The member's parameters, named as in ``MetaFormer(cfg)``: views into the supernet's weights
        (gradients flow back to them)."""
        self.check_member(cfg)
        out = {}
        for name, p in _template(cfg).named_parameters():
            full = self.weights[self._store_name(name, cfg)]
            out[name] = full[tuple(slice(0, n) for n in p.shape)] if full.shape != p.shape else full
        return out

    def subnet_state_dict(self, cfg: ArchConfig) -> dict[str, torch.Tensor]:
        """Inherited weights of ``cfg``, copied: loads into ``MetaFormer(cfg)`` with ``strict=True``."""
        return {k: v.detach().clone().contiguous() for k, v in self.subnet_tensors(cfg).items()}

    def extract(self, cfg: ArchConfig) -> MetaFormer:
        """A stand-alone ``MetaFormer(cfg)`` holding its inherited weights."""
        model = MetaFormer(cfg)
        model.load_state_dict(self.subnet_state_dict(cfg), strict=True)
        return model

    # --- running ------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, cfg: ArchConfig) -> torch.Tensor:
        """Logits of member ``cfg`` on ``x``: ``MetaFormer(cfg)``'s forward on the inherited weights."""
        template = _template(cfg)
        template.train(self.training)
        return functional_call(template, self.subnet_tensors(cfg), (x,), strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.active)

    def no_weight_decay(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.ndim <= 1}


def stage_choices(cfg_options: list[StageConfig]) -> StageChoices:
    """The choices of a stage from its members' stage configs."""
    mixers: dict[str, MixerSpec] = {}
    for s in cfg_options:
        for m in s.block_mixers():
            mixers.setdefault(str(m), m)
    return StageChoices(tuple(mixers.values()), max(s.depth for s in cfg_options), max(s.dim for s in cfg_options),
                        max(s.mlp_ratio for s in cfg_options))
