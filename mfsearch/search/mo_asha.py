"""MO-ASHA: asynchronous successive halving that promotes by Pareto rank, as a Ray Tune scheduler.

Ray Tune's ASHA and Optuna's pruners rank trials on one metric (ray-project/ray#8018,
optuna/optuna#3450). On an accuracy-vs-MACs search that works against the objectives: a cheap
trial that would sit on the front is stopped for being less accurate than expensive ones. MO-ASHA
(Schmucker et al., "Multi-objective Asynchronous Successive Halving", 2021) keeps ASHA's rungs and
asynchronous promotion and replaces the ranking: when a trial reaches a rung, the trials recorded
there (itself included) are ordered by ``pareto_rank.pareto_order`` (non-dominated sorting, then
crowding distance, then arrival) and the trial goes on if it is among the best
``ceil(n / reduction_factor)``. With one objective this is ASHA's top-``n/eta`` rule.

Protected trials (the paper's baselines) are recorded, so they set the bar searched trials must
clear, but are never stopped: a baseline measured at 2 of 8 epochs compares with nothing.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from .. import metrics as M
from .pareto_rank import promoted
from .pickled_state import PickledState

TIME_ATTR = M.EPOCHS_REACHED   # what our trials report once per epoch


def rung_milestones(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """Epochs at which trials are judged: grace, grace*eta, grace*eta^2, ... below max_t.

    A trial at max_t is done, so no rung sits there (it could only stop a finished trial)."""
    out, t = [], float(grace_period)
    while t < max_t:
        milestone = int(round(t))
        if milestone not in out:
            out.append(milestone)
        t *= reduction_factor
    return out


def never_protected(trial) -> bool:
    return False


class MOASHAScheduler(PickledState, FIFOScheduler):
    """``objectives``: (metric, mode) pairs, e.g. [("val/acc1", "max"), ("cost/macs", "min")]."""

    def __init__(self, objectives: Sequence[tuple[str, str]], max_t: int, grace_period: int = 1,
                 reduction_factor: float = 2.0, time_attr: str = TIME_ATTR,
                 protect: Callable[[object], bool] = never_protected):
        super().__init__()
        if not objectives:
            raise ValueError("MOASHAScheduler needs at least one objective")
        for metric, mode in objectives:
            if mode not in ("max", "min"):
                raise ValueError(f"objective {metric}: mode must be 'max' or 'min', got {mode!r}")
        if grace_period < 1 or reduction_factor <= 1 or max_t < 1:
            raise ValueError("need grace_period >= 1, reduction_factor > 1 and max_t >= 1")
        self.objectives = [(m, mode) for m, mode in objectives]
        self.maximize = [mode == "max" for _, mode in self.objectives]
        self.max_t, self.time_attr = max_t, time_attr
        self.reduction_factor = reduction_factor
        self.protect = protect
        # milestone -> {trial_id: objective values}, in arrival order (the last tie-break)
        self.rungs: dict[int, dict[str, tuple[float, ...]]] = {
            m: {} for m in rung_milestones(grace_period, reduction_factor, max_t)}
        self.decisions: list[tuple[str, int, str]] = []   # (trial_id, milestone, CONTINUE|STOP): for tests/logs
        self.num_stopped = 0

    # Tune calls this with the TuneConfig's metric/mode; ours come from the spec's objectives.
    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    @property
    def metric(self):
        return self.objectives[0][0]

    def values(self, result: dict) -> tuple[float, ...] | None:
        if any(metric not in result for metric, _ in self.objectives):
            return None
        return tuple(float(result[metric]) for metric, _ in self.objectives)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        t = result.get(self.time_attr)
        values = self.values(result)
        if t is None or values is None:
            return TrialScheduler.CONTINUE
        if t >= self.max_t:
            return TrialScheduler.STOP
        return self.judge(trial, int(t), values)

    def judge(self, trial, t: int, values: tuple[float, ...]) -> str:
        """Record ``trial`` at the highest rung ``t`` reaches that it has not passed yet, and decide."""
        milestone = max((m for m in self.rungs if m <= t and trial.trial_id not in self.rungs[m]), default=None)
        if milestone is None:
            return TrialScheduler.CONTINUE
        recorded = self.rungs[milestone]
        recorded[trial.trial_id] = values
        ids = list(recorded)
        keep = {ids[i] for i in promoted(list(recorded.values()), self.maximize, self.reduction_factor)}
        action = TrialScheduler.CONTINUE
        if trial.trial_id not in keep and not self.protect(trial):
            action = TrialScheduler.STOP
            self.num_stopped += 1
        self.decisions.append((trial.trial_id, milestone, action))
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        pass  # decisions are taken on results; a completed trial has nothing left to promote

    def on_trial_remove(self, tune_controller, trial) -> None:
        pass  # its records stay: later trials must still clear the bar it set

    def debug_string(self) -> str:
        sizes = ", ".join(f"epoch {m}: {len(r)}" for m, r in self.rungs.items())
        return f"MO-ASHA ({', '.join(m for m, _ in self.objectives)}): stopped {self.num_stopped}; rungs {sizes}"



def is_baseline_trial(trial) -> bool:
    """A trial of the paper's families (or a configured preset/custom baseline): never stopped early."""
    candidate = (getattr(trial, "config", None) or {}).get("candidate") or {}
    return candidate.get("family", "searched") != "searched"


__all__ = ["MOASHAScheduler", "is_baseline_trial", "rung_milestones"]
