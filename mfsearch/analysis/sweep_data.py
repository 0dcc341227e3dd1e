"""A finished (or running) sweep read back from MLflow as typed records: the input of every
after-search command (pareto, dashboard, export, retrain).

A sweep is found by its experiment name (the sweep name; its latest sweep run when the name was
reused) or by the id of its parent run. Only live runs count: resumed sweeps delete the partial runs
of interrupted trials, and MLflow's default view hides deleted runs.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

from .. import metrics as M
from ..errors import MfsearchError
from ..tracking import RunView, Store
from ..tracking.tags import (EPOCHS_TAG, FAMILY_TAG, FINISHED_STATUSES, KIND_TAG, PARENT_TAG, STATUS_TAG,
                             SWEEP_RUN_TAG, TRIAL_TAG)
HISTORY_METRICS = (M.VAL_ACC1, M.VAL_LOSS, M.TRAIN_LOSS)
STAGE_FIELDS = ("mixer", "depth", "dim", "mlp_ratio", "mlp_act", "norm")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class StageSummary:
    """One stage as logged (``stage0.mixer`` ...); per-block mixers read ``sepconv+attention``."""

    mixer: str
    depth: int
    dim: int
    mlp_ratio: float | None = None
    mlp_act: str | None = None
    norm: str | None = None

    def describe(self) -> str:
        return f"{self.mixer} @{self.dim}" if "+" in self.mixer else f"{self.mixer} x{self.depth} @{self.dim}"


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    run_id: str
    trial_id: str
    family: str                  # a paper family, "searched", "preset:<name>" or "custom"
    status: str                  # completed | stopped_early | failed | running
    epochs: int                  # epochs reached: the fidelity its metrics were measured at
    metrics: dict[str, float]    # each metric's last logged value
    stages: tuple[StageSummary, ...]
    params: dict[str, str]
    history: dict[str, list[tuple[int, float]]] = dataclasses.field(default_factory=dict)  # (epoch, value)

    @property
    def is_baseline(self) -> bool:
        return self.family != "searched"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES and M.VAL_ACC1 in self.metrics and M.COST_MACS in self.metrics

    @property
    def label(self) -> str:
        """What a plot or a table calls it: the family for baselines, ``searched <trial id>`` else."""
        return f"{self.family} {self.trial_id}" if self.family == "searched" else self.family

    def describe(self) -> str:
        """``identity x1 @32 | pooling x2 @64 | ...``"""
        return " | ".join(s.describe() for s in self.stages)


@dataclasses.dataclass(frozen=True)
class Sweep:
    name: str                    # experiment name = sweep name
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    settings: dict[str, Any]     # resolved.yaml of the sweep run: data, recipe, search, objectives, ...
    trials: tuple[TrialRecord, ...]
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # the sweep run's params (train.recipe, ...)

    @property
    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.finished]

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.settings.get("data") or {})

    @property
    def img_size(self) -> int | None:
        return self.settings.get("img_size") or self.data.get("img_size")

    @property
    def num_classes(self) -> int | None:
        return self.settings.get("num_classes")

    def trial(self, run_id: str) -> TrialRecord:
        for t in self.trials:
            if t.run_id == run_id:
                return t
        raise MfsearchError(f"run {run_id} is not a trial of sweep {self.name!r}")


def open_store(tracking_uri: str | None) -> Store:
    """The store a sweep was written to: a missing SQLite file is an error, never created."""
    return Store.open(tracking_uri, must_exist=True)


def load_sweep(ref: str, tracking_uri: str | None = None, history: bool = False,
               require_finished: bool = True) -> Sweep:
    """The sweep named ``ref`` (experiment name) or whose parent run id is ``ref``.

    ``history`` also reads the per-epoch curves of ``HISTORY_METRICS`` (one query per trial and
    metric). Raises ``MfsearchError`` for an unknown name or id, and, with ``require_finished``,
    for a sweep with no finished trial.
    """
    store = open_store(tracking_uri)
    experiment, parent = _find_parent(store, ref)
    runs = [r for r in store.children(experiment.experiment_id, parent.run_id) if TRIAL_TAG in r.tags]
    trials = tuple(_record(store, run, history) for run in runs)
    text = store.artifact_text(parent.run_id, "resolved.yaml")
    settings = (yaml.safe_load(text) or {}) if text else {}
    sweep = Sweep(experiment.name, experiment.experiment_id, parent.run_id, store.uri, settings,
                  tuple(sorted(trials, key=lambda t: (t.is_baseline is False, t.family, t.trial_id))),
                  dict(parent.params))
    if require_finished and not sweep.finished:
        counts = {}
        for t in sweep.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trial runs"
        raise MfsearchError(f"sweep {sweep.name!r} has no finished trials yet ({seen}); "
                            f"wait for it or continue it with `mfsearch run --resume {sweep.name}`")
    return sweep


def _find_parent(store: Store, ref: str):
    experiment = store.experiment(ref)
    if experiment is not None and experiment.lifecycle_stage == "active":
        parents = store.search_runs([experiment.experiment_id], f"tags.`{KIND_TAG}` = 'sweep'",
                                    order_by=["attributes.start_time DESC"], max_results=1)
        if not parents:
            raise MfsearchError(f"experiment {ref!r} in {store.uri} holds no sweep run (one made by `mfsearch run`)")
        return experiment, parents[0]
    if _RUN_ID.match(ref):
        run = store.run(ref)
        if run is not None:
            experiment = store.experiment_by_id(run.experiment_id)
            if run.tags.get(KIND_TAG) == "sweep":
                return experiment, run
            parent = run.tags.get(PARENT_TAG)
            hint = f"; its sweep is run {parent} (experiment {experiment.name!r})" if parent else ""
            raise MfsearchError(f"run {ref} is not a sweep run{hint}")
    raise MfsearchError(f"no sweep named {ref!r} and no sweep run with that id in {store.uri}; "
                        f"sweeps there: {', '.join(_sweep_names(store)) or 'none'}")


def _sweep_names(store: Store) -> list[str]:
    names = []
    for name in store.experiment_names():
        exp = store.experiment(name)
        if exp and store.search_runs([exp.experiment_id], f"tags.`{KIND_TAG}` = 'sweep'", max_results=1):
            names.append(name)
    return sorted(names)


def _record(store: Store, run: RunView, history: bool) -> TrialRecord:
    tags, params, metrics = run.tags, run.params, run.metrics
    epochs = tags.get(EPOCHS_TAG) or metrics.get(M.EPOCHS_REACHED) or 0
    status = tags.get(STATUS_TAG) or ("failed" if run.status == "FAILED" else "running")
    curves = {key: store.metric_history(run.run_id, key) for key in HISTORY_METRICS} if history else {}
    return TrialRecord(run.run_id, tags[TRIAL_TAG], tags.get(FAMILY_TAG, "custom"), status,
                       int(float(epochs)), metrics, _stages(params), dict(params), curves)


def _stages(params: dict[str, str]) -> tuple[StageSummary, ...]:
    stages = []
    for i in range(int(params.get("num_stages", 0) or 0)):
        p = {f: params.get(f"stage{i}.{f}") for f in STAGE_FIELDS}
        stages.append(StageSummary(p["mixer"] or "?", int(p["depth"] or 0), int(p["dim"] or 0),
                                   float(p["mlp_ratio"]) if p["mlp_ratio"] else None, p["mlp_act"], p["norm"]))
    return tuple(stages)


def download_trial_files(sweep: Sweep, trial: TrialRecord, dest: Path) -> tuple[Path, Path]:
    """(arch.yaml, weights.safetensors) of ``trial`` downloaded into ``dest``."""
    store = open_store(sweep.tracking_uri)
    names = store.artifact_names(trial.run_id)
    missing = [n for n in ("arch.yaml", "weights.safetensors") if n not in names]
    if missing:
        raise MfsearchError(f"trial run {trial.run_id} ({trial.label}) has no {' or '.join(missing)} artifact "
                            f"(a trial stopped before its first checkpoint?)")
    dest.mkdir(parents=True, exist_ok=True)
    arch = store.download_artifact(trial.run_id, "arch.yaml", dest)
    weights = store.download_artifact(trial.run_id, "weights.safetensors", dest)
    return arch, weights


def artifact_text(tracking_uri: str, run_id: str, name: str) -> str | None:
    """A small text artifact of a run (``arch.yaml``, ``spec.yaml``, ``confirm.json``), None when absent."""
    return open_store(tracking_uri).artifact_text(run_id, name)


def latest_confirmation(sweep: Sweep):
    """The newest finished ``ConfirmReport`` of ``sweep`` (None when it has none)."""
    store = open_store(sweep.tracking_uri)
    runs = store.search_runs([sweep.experiment_id], f"tags.`{KIND_TAG}` = 'confirm' and "
                                                    f"tags.`{SWEEP_RUN_TAG}` = '{sweep.parent_run_id}' and "
                                                    "attributes.status = 'FINISHED'",
                             order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    text = store.artifact_text(runs[0].run_id, "confirm.json")
    from .confirmation import ConfirmReport
    return ConfirmReport.from_dict(json.loads(text)) if text else None
