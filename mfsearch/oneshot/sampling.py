"""Which sub-networks each supernet training step trains (the ``search.oneshot.sampling`` rule).

- ``fair`` (default; FairNAS, Chu et al. 2021, "strict fairness"): each step trains k paths, k the
  largest number of mixer choices of any block, and every mixer choice of every block appears in
  them equally often (exactly once when all blocks offer k choices); depth and width are drawn
  uniformly per path. Uniform single-path sampling is only fair in expectation, and a mixer that
  lags behind in updates looks worse than it is when sub-networks are ranked.
- ``uniform`` (SPOS, Guo et al. 2020): ``paths_per_step`` paths drawn uniformly (default 1).
- ``sandwich`` (BigNAS, Yu et al. 2020): the largest and the smallest member (every depth and width
  at its max / min, mixers drawn uniformly) plus ``paths_per_step - 2`` uniform ones (default 4).

Constraint-aware: a path outside the space's constraints (or not a valid architecture) is never
trained. A violating path is redrawn on its non-mixer choices first (fair keeps its mixers), then
entirely; ``unfair_paths`` counts the paths whose mixers had to be redrawn, and ``mixer_usage``
the block-level updates every mixer got, so a constraint that starves a mixer is visible.
"""
from __future__ import annotations

import collections
import random
from typing import Any

from ..config import ArchConfig
from ..errors import MfsearchError
from ..search.candidates import sample_params
from .space import OneShotSpace

RULES = ("fair", "uniform", "sandwich")
REDRAWS = 200


class PathSampler:
    def __init__(self, space: OneShotSpace, rule: str = "fair", seed: int = 0, paths_per_step: int | None = None):
        if rule not in RULES:
            raise ValueError(f"sampling rule {rule!r} is not one of {', '.join(RULES)}")
        self.space, self.rule = space, rule
        self.rng = random.Random(seed)
        self.mixer_dims = space.mixer_dimensions()
        widest = max((len(space.dims[n].options) for n in self.mixer_dims), default=1)
        default = {"fair": widest, "uniform": 1, "sandwich": 4}[rule]
        self.paths_per_step = paths_per_step or default
        self.unfair_paths = 0
        self.mixer_usage: collections.Counter = collections.Counter()

    # --- drawing ------------------------------------------------------------------------------
    def step(self) -> list[ArchConfig]:
        """The paths of one training step, each a member within the constraints."""
        if self.rule == "fair":
            drafts = self._fair_mixers()
        elif self.rule == "sandwich":
            drafts = [("largest", None), ("smallest", None)] + [(None, None)] * max(0, self.paths_per_step - 2)
        else:
            drafts = [(None, None)] * self.paths_per_step
        paths = [self._feasible(kind, mixers) for kind, mixers in drafts]
        for cfg in paths:
            for stage in cfg.stages:
                self.mixer_usage.update(str(m) for m in stage.block_mixers())
        return paths

    def _fair_mixers(self) -> list[tuple[None, dict]]:
        k = self.paths_per_step
        columns = {}
        for name in self.mixer_dims:
            options, seq = list(self.space.dims[name].options), []
            while len(seq) < k:
                self.rng.shuffle(options)
                seq += options
            columns[name] = seq[:k]
        return [(None, {name: seq[t] for name, seq in columns.items()}) for t in range(k)]

    def _feasible(self, kind: str | None, mixers: dict | None) -> ArchConfig:
        for attempt in range(REDRAWS):
            params = sample_params(self.space.spec.space, self.rng)
            if mixers and attempt < REDRAWS // 2:
                params.update(mixers)
            if kind and attempt < REDRAWS // 4:
                params = self.space.extreme(params, largest=kind == "largest")
            member = self.space.member(params)
            if not isinstance(member, str):
                if mixers and attempt >= REDRAWS // 2:
                    self.unfair_paths += 1
                return member[0]
        raise MfsearchError(f"the supernet sampler found no member within the constraints in {REDRAWS} draws; "
                            "widen `constraints` or the space")

    # --- state (travels in the training checkpoint, so a resumed training draws the same paths) -
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss], "unfair_paths": self.unfair_paths,
                "mixer_usage": dict(self.mixer_usage)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.unfair_paths = int(state["unfair_paths"])
        self.mixer_usage = collections.Counter(state["mixer_usage"])

    def usage_shares(self) -> dict[str, float]:
        """Each mixer's share of block-level updates so far."""
        total = sum(self.mixer_usage.values()) or 1
        return {name: n / total for name, n in sorted(self.mixer_usage.items())}
