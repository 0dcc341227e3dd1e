"""Pareto fronts of a sweep: accuracy against each cost, at one fidelity, with hypervolumes and the
paper's families it beats. Data in, data out: the terminal table, the plots, the dashboard and the
files logged to MLflow all read a ``ParetoReport``.

Hypervolume reference point, per front: (``val/acc1`` = 0 %, cost = 1.1 x the largest cost among
the compared trials). Accuracy 0 is a floor no model can fall below, so it needs no guess from the
data; the cost bound is widened by 10 % so that the most expensive trial still adds volume. The same
point serves all trials and the baselines alone, so those two numbers compare; the values are shares
of the box between that reference and the ideal (100 %, cost 0), so 0.5 reads "half the box". Two
sweeps' hypervolumes compare only when their reference costs agree (both are in ``front.json``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .. import metrics as M
from ..pareto import dominated_among, highest_fidelity, normalized_hypervolume, pareto_indices
from ..published import PUBLISHED, PublishedResult
from .sweep_data import Sweep, TrialRecord

ACCURACY = M.VAL_ACC1
MAXIMIZE = (True, False)          # accuracy up, cost down
ACC_FLOOR = 0.0                   # reference accuracy (percent)
COST_MARGIN = 0.1                 # reference cost = (1 + margin) x the largest compared cost


@dataclasses.dataclass(frozen=True)
class CostAxis:
    key: str          # "macs": names files, metrics and CSV columns
    metric: str       # the MLflow metric
    label: str        # axis title
    unit: str         # unit of ``scale``d values
    scale: float      # logged value / scale = value shown


COST_AXES = (
    CostAxis("macs", M.COST_MACS, "MACs", "M", 1e6),
    CostAxis("params", M.COST_PARAMS, "params", "M", 1e6),
    CostAxis("latency", M.COST_LATENCY_MS, "latency (host, batch 1)", "ms", 1.0),
)


@dataclasses.dataclass(frozen=True)
class FrontMember:
    trial: TrialRecord
    dominates: tuple[TrialRecord, ...]   # baselines at the same fidelity that it dominates


@dataclasses.dataclass(frozen=True)
class Front:
    axis: CostAxis
    fidelity: int                            # epochs every compared trial reached
    compared: tuple[TrialRecord, ...]        # finished trials at that fidelity with both metrics
    lower_fidelity: tuple[TrialRecord, ...]  # finished, but stopped earlier: shown, never compared
    members: tuple[FrontMember, ...]         # non-dominated among ``compared``, by cost
    baseline_front: tuple[TrialRecord, ...]  # non-dominated among the baselines alone
    reference: tuple[float, float]           # (accuracy, cost) of the hypervolume
    hypervolume: float                       # all compared trials, share of the box
    hypervolume_baselines: float             # the baselines alone, same reference

    def point(self, trial: TrialRecord) -> tuple[float, float]:
        return trial.metrics[ACCURACY], trial.metrics[self.axis.metric]

    def is_member(self, trial: TrialRecord) -> bool:
        return any(m.trial.run_id == trial.run_id for m in self.members)


@dataclasses.dataclass(frozen=True)
class ParetoReport:
    sweep: Sweep
    fronts: tuple[Front, ...]
    # The sweep's latest `mfsearch confirm` (a ``confirmation.ConfirmReport``), or None: until one
    # exists, every "dominates" is a single-seed, low-fidelity observation, shown as unconfirmed.
    confirmation: Any = None

    def verdict(self, trial: TrialRecord, baseline: TrialRecord) -> str:
        """confirmed / refuted / unconfirmed for "``trial`` beats ``baseline``" (unconfirmed without a confirmation)."""
        c = self.confirmation
        if c is None:
            return "unconfirmed"
        a, x = c.by_source(trial.run_id), c.by_source(baseline.run_id)
        claim = next((k for k in c.claims if a and x and k.arch == a.key and k.baseline == x.key), None)
        return claim.verdict if claim else "unconfirmed"

    def beats_text(self, member: "FrontMember") -> str:
        """``caformer (confirmed), convformer (unconfirmed)``: never a bare, unqualified win."""
        return ", ".join(f"{b.label} ({self.verdict(member.trial, b)})" for b in member.dominates)

    def front(self, key: str) -> Front | None:
        return next((f for f in self.fronts if f.axis.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON logged as ``pareto/front.json``."""
        return {"sweep": self.sweep.name, "parent_run_id": self.sweep.parent_run_id,
                "confirmation": self.confirmation.to_dict() if self.confirmation else None,
                "objectives": {"maximize": ACCURACY},
                "hypervolume_reference": f"accuracy {ACC_FLOOR:g} %, cost {1 + COST_MARGIN:g} x the largest compared "
                                         "cost; values are shares of the box up to (100 %, cost 0)",
                "fronts": [_front_dict(f) for f in self.fronts]}

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per trial and front: the CSV logged as ``pareto/front.csv``."""
        rows = []
        for f in self.fronts:
            for t in f.compared + f.lower_fidelity:
                member = next((m for m in f.members if m.trial.run_id == t.run_id), None)
                rows.append({"cost": f.axis.key, "run_id": t.run_id, "trial_id": t.trial_id, "family": t.family,
                             "baseline": t.is_baseline, "epochs": t.epochs, "compared": t in f.compared,
                             "on_front": member is not None, ACCURACY: t.metrics[ACCURACY],
                             f.axis.metric: t.metrics.get(f.axis.metric),
                             "dominates": ";".join(f"{b.label}:{self.verdict(t, b)}" for b in member.dominates)
                             if member else "",
                             "stages": t.describe()})
        return rows


def _front_dict(f: Front) -> dict[str, Any]:
    return {"cost": f.axis.metric, "fidelity_epochs": f.fidelity, "compared": len(f.compared),
            "lower_fidelity_excluded": [t.run_id for t in f.lower_fidelity],
            "reference": {ACCURACY: f.reference[0], f.axis.metric: f.reference[1]},
            "hypervolume": f.hypervolume, "hypervolume_baselines": f.hypervolume_baselines,
            "baseline_front": [t.run_id for t in f.baseline_front],
            "members": [{"run_id": m.trial.run_id, "trial_id": m.trial.trial_id, "family": m.trial.family,
                         ACCURACY: m.trial.metrics[ACCURACY], f.axis.metric: m.trial.metrics[f.axis.metric],
                         "epochs": m.trial.epochs, "stages": m.trial.describe(),
                         "dominates": [{"run_id": b.run_id, "family": b.family} for b in m.dominates]}
                        for m in f.members]}


def pareto_report(sweep: Sweep, axes: Sequence[CostAxis] = COST_AXES, confirmation: Any = None) -> ParetoReport:
    """A front per cost axis; latency only when every compared trial measured it."""
    fronts = []
    for axis in axes:
        front = build_front(sweep.finished, axis)
        if front is not None:
            fronts.append(front)
    return ParetoReport(sweep, tuple(fronts), confirmation)


def build_front(trials: Sequence[TrialRecord], axis: CostAxis) -> Front | None:
    """The front of ``trials`` for (accuracy up, ``axis`` down) at their highest fidelity."""
    usable = [t for t in trials if ACCURACY in t.metrics and axis.metric in t.metrics]
    if not usable or len(usable) < len([t for t in trials if ACCURACY in t.metrics]):
        return None  # a cost some trial lacks (latency not measured) cannot rank them all
    axis = display_unit(axis, max(t.metrics[axis.metric] for t in usable))
    fidelity, at_top = highest_fidelity([t.epochs for t in usable])
    compared = [usable[i] for i in at_top]
    lower = tuple(t for t in usable if t.epochs != fidelity)
    points = [(t.metrics[ACCURACY], t.metrics[axis.metric]) for t in compared]
    baselines = [t for t in compared if t.is_baseline]
    base_points = [(t.metrics[ACCURACY], t.metrics[axis.metric]) for t in baselines]
    members = []
    for i in pareto_indices(points, MAXIMIZE):
        beaten = dominated_among(points[i], base_points, MAXIMIZE)
        members.append(FrontMember(compared[i], tuple(baselines[j] for j in beaten)))
    members.sort(key=lambda m: (m.trial.metrics[axis.metric], -m.trial.metrics[ACCURACY]))
    reference = (ACC_FLOOR, (1 + COST_MARGIN) * max(p[1] for p in points))
    ideal = (100.0, 0.0)
    return Front(axis, int(fidelity), tuple(compared), lower, tuple(members),
                 tuple(baselines[j] for j in pareto_indices(base_points, MAXIMIZE)), reference,
                 normalized_hypervolume(points, MAXIMIZE, reference, ideal),
                 normalized_hypervolume(base_points, MAXIMIZE, reference, ideal))


def display_unit(axis: CostAxis, largest: float) -> CostAxis:
    """Millions switch to billions once a cost reaches 1e9 (ImageNet MACs: 4.1 G, not 4100 M)."""
    if axis.unit == "M" and largest >= 1e9:
        return dataclasses.replace(axis, unit="G", scale=1e9)
    return axis


def epochs_text(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def published_reference(sweep: Sweep) -> list[PublishedResult]:
    """The paper's ImageNet-1K 224-px results, when the sweep's data is ImageNet-1K at 224 px
    (1000 classes in an ImageFolder tree); on any other data they would mislead, so: none."""
    data = sweep.data
    if data.get("dataset") == "imagefolder" and sweep.num_classes == 1000 and sweep.img_size == 224:
        return [r for r in PUBLISHED if r.resolution == 224 and r.pretrain == "in1k"]
    return []


def published_cost(row: PublishedResult, axis: CostAxis) -> float | None:
    """A published row's cost in the axis's logged unit (absolute MACs, params; no latency)."""
    if axis.metric == M.COST_MACS:
        return row.macs_g * 1e9
    if axis.metric == M.COST_PARAMS:
        return row.params_m * 1e6
    return None
