"""Where candidate parameters come from: random, grid, or Optuna (TPE / NSGA-II) ask-and-tell.

Why our own thin layer instead of Ray's ``OptunaSearch``/``BasicVariantGenerator``: constraints
must be checked on the proposed architecture *before* a trial exists (violators are never
trained, only counted), per-stage spaces are conditional (per-block mixers, shared choices), and
Optuna's ask-and-tell API is stable where Ray's wrappers have churned. Ray still runs, schedules
and resumes the trials (``searcher.py`` adapts this to Ray's ``Searcher``).
"""
from __future__ import annotations

import random
from typing import Any

from .. import metrics as M
from .candidates import dimensions, grid_params, sample_params
from .space import ArchSpace, Objective
from .values import Choice, Fixed, Range

_PRIMITIVE = (str, int, float, bool, type(None))


class RandomProposer:
    def __init__(self, space: ArchSpace, seed: int):
        self.space, self.rng = space, random.Random(seed)

    def ask(self) -> tuple[Any, dict] | None:
        return None, sample_params(self.space, self.rng)

    def tell(self, token: Any, values: list[float] | None) -> None:
        pass


class GridProposer:
    def __init__(self, space: ArchSpace, seed: int):
        self.points = grid_params(space)
        random.Random(seed).shuffle(self.points)  # so a truncated grid still spreads over the space
        self.next = 0

    def ask(self) -> tuple[Any, dict] | None:
        if self.next >= len(self.points):
            return None
        self.next += 1
        return None, self.points[self.next - 1]

    def tell(self, token: Any, values: list[float] | None) -> None:
        pass

    def __len__(self) -> int:
        return len(self.points)


class OptunaProposer:
    """Optuna ask-and-tell; several objectives make a multi-objective study."""

    def __init__(self, space: ArchSpace, seed: int, objectives: tuple[Objective, ...], algorithm: str):
        import warnings

        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE `group`
        self.dims = dimensions(space)
        directions = ["maximize" if o.mode == "max" else "minimize" for o in objectives]
        if algorithm == "optuna-nsga2":
            sampler = optuna.samplers.NSGAIISampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.metrics = [M.during_sweep(o.metric) for o in objectives]
        self.distributions = {name: _distribution(dim) for name, dim in self.dims.items()
                              if not isinstance(dim, Fixed)}

    def ask(self) -> tuple[Any, dict] | None:
        trial = self.study.ask(self.distributions)
        params = {}
        for name, dim in self.dims.items():
            if isinstance(dim, Fixed):
                params[name] = dim.value
            elif isinstance(dim, Choice) and not all(isinstance(o, _PRIMITIVE) for o in dim.options):
                params[name] = dim.options[trial.params[name]]
            else:
                params[name] = trial.params[name]
        return trial.number, params

    def tell(self, token: Any, values: list[float] | None) -> None:
        import optuna
        if token is None:
            return
        if values is None or any(v != v for v in values):  # failed, rejected or NaN
            self.study.tell(token, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(token, values)


def _distribution(dim):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    if isinstance(dim, Choice):
        primitive = all(isinstance(o, _PRIMITIVE) for o in dim.options)
        return CategoricalDistribution(list(dim.options) if primitive else list(range(len(dim.options))))
    if isinstance(dim, Range):
        if dim.integer:
            return IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))
        return FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    raise TypeError(f"unsupported dimension {dim!r}")


def make_proposer(space: ArchSpace, algorithm: str, seed: int, objectives: tuple[Objective, ...]):
    if algorithm == "random":
        return RandomProposer(space, seed)
    if algorithm == "grid":
        return GridProposer(space, seed)
    return OptunaProposer(space, seed, objectives, algorithm)
