"""Inherited-weight evaluation of sub-networks, and the multi-objective search over them.

The validation split is decoded and transformed once and kept as tensors: every sub-network then
sees the same images with no data loading, in batches (no grad, eval mode). Results are cached by
architecture, so a search that proposes a member twice pays once.

Search: exhaustive when the space (within its constraints) has at most ``budget`` members, else
NSGA-II (Optuna's ``NSGAIISampler`` through the sweep's own ask-and-tell proposer, so the space's
dimensions map to Optuna exactly as in a from-scratch ``optuna-nsga2`` sweep) for ``budget``
distinct evaluations. Objectives are the space's: ``val/acc1``/``val/loss`` inherited, ``cost/*``
from the analytic cost model (``cost/latency_ms`` measured by ``mfsearch.latency``).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .. import metrics as M
from ..config import ArchConfig
from ..cost import ModelCost
from ..pareto import pareto_indices
from ..search.candidates import grid_params
from ..search.proposers import OptunaProposer
from ..search.values import Range
from .space import OneShotSpace, arch_key
from .supernet import SuperNet

ASKS_PER_EVALUATION = 20   # NSGA-II gives up after this many proposals per evaluation (all seen or rejected)


class InheritedEvaluator:
    """Inherited val/acc1 and val/loss of members, on ``device`` (default: the GPU when there is one;
    Lightning hands the model back on the CPU after ``fit``, so the supernet is moved here)."""

    def __init__(self, supernet: SuperNet, batches: list[tuple[torch.Tensor, torch.Tensor]],
                 device: str | torch.device | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.supernet = supernet.to(self.device)
        self.batches = [(x.to(self.device), y.to(self.device)) for x, y in batches]
        self.cache: dict[str, dict[str, float]] = {}
        self.seconds = 0.0

    @classmethod
    def from_datamodule(cls, supernet: SuperNet, datamodule, batch_size: int = 500,
                        device: str | torch.device | None = None) -> "InheritedEvaluator":
        datamodule.setup("fit")
        xs, ys = [], []
        for x, y in datamodule.val_dataloader():
            xs.append(x)
            ys.append(y)
        x, y = torch.cat(xs), torch.cat(ys)
        return cls(supernet, [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)],
                   device)

    @torch.no_grad()
    def __call__(self, cfg: ArchConfig) -> dict[str, float]:
        key = arch_key(cfg)
        if key not in self.cache:
            started = time.perf_counter()
            was_training = self.supernet.training
            self.supernet.eval()
            correct, loss, seen = 0, 0.0, 0
            for x, y in self.batches:
                logits = self.supernet.run(x, cfg)
                correct += int((logits.argmax(1) == y).sum())
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                seen += int(y.shape[0])
            self.supernet.train(was_training)
            self.cache[key] = {M.VAL_ACC1: 100.0 * correct / max(1, seen), M.VAL_LOSS: loss / max(1, seen)}
            self.seconds += time.perf_counter() - started
        return self.cache[key]


@dataclasses.dataclass
class Evaluated:
    cfg: ArchConfig
    params: dict[str, Any]      # the candidate's flat parameters (empty for baselines)
    metrics: dict[str, float]   # val/acc1, val/loss (inherited), cost/* (analytic)
    family: str = "searched"

    def row(self) -> dict[str, Any]:
        from .space import params_of
        return {"family": self.family, "arch": arch_key(self.cfg), **params_of(self.cfg), **self.metrics}


@dataclasses.dataclass
class SearchOutcome:
    evaluated: list[Evaluated]
    front: list[int]            # indices into evaluated: non-dominated among the searched members
    method: str                 # exhaustive | nsga2
    rejected: int
    seconds: float


def cost_metrics(cost: ModelCost) -> dict[str, float]:
    return {M.COST_PARAMS: cost.params, M.COST_FROZEN_PARAMS: cost.frozen_params, M.COST_MACS: cost.macs}


def objective_values(metrics: dict[str, float], objectives) -> list[float]:
    return [float(metrics.get(o.metric, math.nan)) for o in objectives]


def _latency(cfg: ArchConfig) -> float:
    from ..latency import LatencyProtocol, measure_arch
    return measure_arch(cfg, LatencyProtocol()).median_ms


def search(space: OneShotSpace, supernet: SuperNet, evaluate: InheritedEvaluator, budget: int, seed: int,
           progress: Callable[[int, int], None] | None = None, every: float = 15.0) -> SearchOutcome:
    """Evaluate up to ``budget`` distinct members; the front over the space's objectives."""
    objectives = space.spec.objectives
    needs_latency = any(o.metric == M.COST_LATENCY_MS for o in objectives)
    started = last = time.monotonic()
    evaluated: list[Evaluated] = []
    seen: dict[str, int] = {}
    rejected = 0

    def score(params: dict[str, Any]) -> list[float] | None:
        nonlocal rejected, last
        member = space.member(params)
        if isinstance(member, str):
            rejected += 1
            return None
        cfg, cost = member
        key = arch_key(cfg)
        if key not in seen:
            metrics = {**evaluate(cfg), **cost_metrics(cost)}
            if needs_latency:
                metrics[M.COST_LATENCY_MS] = _latency(cfg)
            seen[key] = len(evaluated)
            evaluated.append(Evaluated(cfg, dict(params), metrics))
            if progress and time.monotonic() - last >= every:
                last = time.monotonic()
                progress(len(evaluated), rejected)
        return objective_values(evaluated[seen[key]].metrics, objectives)

    grid_ok = not any(isinstance(d, Range) and not d.integer for d in space.dims.values())
    points = _grid_within(space, budget) if grid_ok else None
    if points is not None:
        method = "exhaustive"
        for params in points:
            score(params)
    else:
        method = "nsga2"
        proposer = OptunaProposer(space.spec.space, seed, objectives, "optuna-nsga2")
        for _ in range(budget * ASKS_PER_EVALUATION):
            if len(evaluated) >= budget:
                break
            token, params = proposer.ask()
            proposer.tell(token, score(params))
    maximize = [o.mode == "max" for o in objectives]
    values = [objective_values(e.metrics, objectives) for e in evaluated]
    front = pareto_indices(values, maximize) if values else []
    return SearchOutcome(evaluated, sorted(front), method, rejected, time.monotonic() - started)


def _grid_within(space: OneShotSpace, budget: int) -> list[dict[str, Any]] | None:
    """Every grid point of the space when there are at most ``budget`` valid members (else None)."""
    size = 1
    for dim in space.dims.values():
        size *= len(dim.grid()) if hasattr(dim, "grid") else 1
        if size > 50 * budget:          # far too many to even filter: evolve instead
            return None
    points = [p for p in grid_params(space.spec.space) if not isinstance(space.member(p), str)]
    return points if len(points) <= budget else None
