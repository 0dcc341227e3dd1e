"""What `mfsearch confirm` concludes, as data: per architecture the mean and 95 % interval over the
shared seeds, per "A beats baseline X" claim a paired verdict, and the rank agreement between the
sweep and the confirmation. Pure: built from numbers, written to and read from ``confirm.json``.

A claim is a dominance claim on (val/acc1 up, MACs down). MACs are exact (counted, not measured), so
for a searched A with MACs(A) <= MACs(X) the claim rests on accuracy alone, judged by
``stats.paired_comparison`` over the seeds both finished: confirmed when the 95 % interval of
acc(A) - acc(X) lies above 0, refuted when it lies below 0, unconfirmed when it holds 0.
Confirmed is a superiority test, stricter than dominance needs at strictly fewer MACs (there
"no worse" would do) — a verdict should err on the side of not claiming.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from .stats import CONFIRMED, REFUTED, UNCONFIRMED, Comparison, Interval, kendall_tau, mean_interval, paired_comparison

VERDICTS = (CONFIRMED, REFUTED, UNCONFIRMED)


@dataclasses.dataclass(frozen=True)
class ConfirmedArch:
    key: str                       # unique within the confirmation (the source trial id)
    label: str                     # "caformer", "searched 3f2a1b0c"
    family: str
    source_run_id: str             # the sweep's trial run it came from
    stages: str                    # "sepconv x1 @32 | ..."
    macs: float
    params: float
    sweep_acc: float | None        # val/acc1 the sweep measured
    sweep_epochs: int              # ... at this many epochs
    val: dict[int, float]          # seed -> val/acc1 at the confirmation's budget
    test: dict[int, float]         # seed -> test/acc1 (reported, never used to select)
    run_id: str | None = None      # the confirmation's run of this architecture

    @property
    def is_baseline(self) -> bool:
        return self.family != "searched"

    @property
    def val_interval(self) -> Interval | None:
        return mean_interval(list(self.val.values())) if self.val else None

    @property
    def test_interval(self) -> Interval | None:
        return mean_interval(list(self.test.values())) if self.test else None


@dataclasses.dataclass(frozen=True)
class Claim:
    arch: str                      # key of the searched architecture
    baseline: str                  # key of the baseline
    claimed_by_sweep: bool         # the sweep's front said "dominates" at its fidelity
    seeds: tuple[int, ...]         # seeds both finished (the pairs compared)
    comparison: Comparison | None  # None: fewer than 2 shared seeds

    @property
    def verdict(self) -> str:
        return self.comparison.verdict if self.comparison else UNCONFIRMED


@dataclasses.dataclass(frozen=True)
class ConfirmReport:
    sweep: str
    sweep_run_id: str
    confirm_run_id: str
    seeds: tuple[int, ...]
    epochs: int                    # the confirmation's budget
    train_images: int | None       # its data.train_subset (None: the whole split)
    sweep_epochs: int
    archs: tuple[ConfirmedArch, ...]
    claims: tuple[Claim, ...]
    kendall_tau: float             # sweep val/acc1 vs confirmed mean val/acc1, over ``ranked``
    ranked: tuple[str, ...]        # keys of the architectures both rankings hold
    wall_time_s: float = 0.0
    experiment_id: str | None = None   # the sweep's MLflow experiment (where the confirm runs live)

    def arch(self, key: str) -> ConfirmedArch:
        return next(a for a in self.archs if a.key == key)

    def by_source(self, run_id: str) -> ConfirmedArch | None:
        return next((a for a in self.archs if a.source_run_id == run_id), None)

    def claims_of(self, key: str) -> list[Claim]:
        return [c for c in self.claims if c.arch == key]

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for c in self.claims:
            out[c.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep, "sweep_run_id": self.sweep_run_id, "confirm_run_id": self.confirm_run_id,
            "seeds": list(self.seeds), "epochs": self.epochs, "train_images": self.train_images,
            "sweep_epochs": self.sweep_epochs, "kendall_tau": _num(self.kendall_tau), "ranked": list(self.ranked),
            "wall_time_s": self.wall_time_s, "experiment_id": self.experiment_id,
            "test": "paired t-test over shared seeds, two-sided, 95 % interval of the mean difference",
            "archs": [_arch_dict(a) for a in self.archs],
            "claims": [_claim_dict(c) for c in self.claims],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ConfirmReport":
        archs = tuple(ConfirmedArch(
            a["key"], a["label"], a["family"], a["source_run_id"], a.get("stages", ""), a["macs"], a["params"],
            a.get("sweep_acc"), int(a.get("sweep_epochs", 0)), {int(k): v for k, v in a["val"].items()},
            {int(k): v for k, v in a["test"].items()}, a.get("run_id")) for a in d["archs"])
        by_key = {a.key: a for a in archs}
        claims = tuple(_claim(by_key[c["arch"]], by_key[c["baseline"]], c["claimed_by_sweep"]) for c in d["claims"])
        tau = d.get("kendall_tau")
        return cls(d["sweep"], d["sweep_run_id"], d["confirm_run_id"], tuple(d["seeds"]), int(d["epochs"]),
                   d.get("train_images"), int(d.get("sweep_epochs", 0)), archs, claims,
                   math.nan if tau is None else float(tau), tuple(d.get("ranked", ())), float(d.get("wall_time_s", 0)),
                   d.get("experiment_id"))


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def _interval_dict(i: Interval | None) -> dict | None:
    if i is None:
        return None
    return {"mean": i.mean, "low": _num(i.low), "high": _num(i.high), "sd": _num(i.sd), "n": i.n}


def _arch_dict(a: ConfirmedArch) -> dict[str, Any]:
    return {"key": a.key, "label": a.label, "family": a.family, "source_run_id": a.source_run_id, "run_id": a.run_id,
            "stages": a.stages, "macs": a.macs, "params": a.params, "sweep_acc": a.sweep_acc,
            "sweep_epochs": a.sweep_epochs, "val": {str(k): v for k, v in a.val.items()},
            "test": {str(k): v for k, v in a.test.items()},
            "val_interval": _interval_dict(a.val_interval), "test_interval": _interval_dict(a.test_interval)}


def _claim_dict(c: Claim) -> dict[str, Any]:
    cmp = c.comparison
    return {"arch": c.arch, "baseline": c.baseline, "claimed_by_sweep": c.claimed_by_sweep, "seeds": list(c.seeds),
            "verdict": c.verdict, "difference": _interval_dict(cmp.difference) if cmp else None,
            "p_value": _num(cmp.p_value) if cmp else None}


def _claim(a: ConfirmedArch, x: ConfirmedArch, claimed: bool) -> Claim:
    seeds = tuple(sorted(set(a.val) & set(x.val)))
    comparison = paired_comparison([a.val[s] for s in seeds], [x.val[s] for s in seeds]) if len(seeds) >= 2 else None
    return Claim(a.key, x.key, claimed, seeds, comparison)


def build_claims(archs: Sequence[ConfirmedArch], claimed: set[tuple[str, str]]) -> tuple[Claim, ...]:
    """Every (searched A, baseline X) with MACs(A) <= MACs(X) — the pairs where A could dominate X —
    and every other dominance the sweep's front claimed over a baseline (a baseline on the front
    over another baseline, say). ``claimed`` holds the (A, X) keys the sweep said A dominates."""
    out = []
    for a in archs:
        for x in archs:
            if x.is_baseline and x.key != a.key and a.macs <= x.macs and (not a.is_baseline or (a.key, x.key) in claimed):
                out.append(_claim(a, x, (a.key, x.key) in claimed))
    return tuple(out)


def rank_agreement(archs: Sequence[ConfirmedArch]) -> tuple[float, tuple[str, ...]]:
    """Kendall tau between the sweep's val/acc1 and the confirmed mean val/acc1 (architectures
    with both), and the keys it ranks."""
    both = [a for a in archs if a.sweep_acc is not None and a.val]
    tau = kendall_tau([a.sweep_acc for a in both], [a.val_interval.mean for a in both])
    return tau, tuple(a.key for a in both)


def interval_metrics(a: ConfirmedArch) -> dict[str, float]:
    """The metrics an architecture's confirm run carries, sortable in MLflow's runs table."""
    out: dict[str, float] = {"cost/macs": a.macs, "cost/params": a.params}
    for name, interval in (("val_acc1", a.val_interval), ("test_acc1", a.test_interval)):
        if interval is None:
            continue
        out[f"confirm/{name}_mean"] = interval.mean
        if interval.n >= 2:
            out[f"confirm/{name}_ci_low"] = interval.low
            out[f"confirm/{name}_ci_high"] = interval.high
            out[f"confirm/{name}_sd"] = interval.sd
    out = {k: round(v, 4) for k, v in out.items()}   # means of float32 accuracies: 4 decimals, not 18.5799999
    out["confirm/seeds"] = len(a.val)
    if a.sweep_acc is not None:
        out["sweep/val_acc1"] = a.sweep_acc
    return out
