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
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .. import metrics as M
from ..errors import MfsearchError
from ..tracking import resolve_tracking_uri
from ..tracking.mlflow_store import check_reachable

SWEEP_KIND_TAG = KIND_TAG = "mfsearch.kind"      # sweep | confirm | confirm-arch
SWEEP_RUN_TAG = "mfsearch.sweep_run_id"         # on a confirm run: the sweep it confirms
CONFIRM_TAG = "mfsearch.confirm_run_id"         # on confirm runs below the confirm run, and on the sweep run
SOURCE_TAG = "mfsearch.source_run_id"           # on a confirmed architecture's run: the sweep trial it retrains
TRIAL_TAG = "mfsearch.trial_id"
FAMILY_TAG = "mfsearch.family"
STATUS_TAG = "mfsearch.status"
EPOCHS_TAG = "mfsearch.epochs_reached"
PARENT_TAG = "mlflow.parentRunId"
FINISHED_STATUSES = ("completed", "stopped_early")
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


def open_client(tracking_uri: str | None):
    """An ``MlflowClient`` on an existing store: a missing SQLite file is an error, never created."""
    import logging
    import os

    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.is_file():
            raise MfsearchError(f"no MLflow store at {path}: run where the sweep wrote mlflow.db, "
                                f"or pass --tracking-uri")
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small file is noise
    return uri, MlflowClient(tracking_uri=uri)


def load_sweep(ref: str, tracking_uri: str | None = None, history: bool = False,
               require_finished: bool = True) -> Sweep:
    """The sweep named ``ref`` (experiment name) or whose parent run id is ``ref``.

    ``history`` also reads the per-epoch curves of ``HISTORY_METRICS`` (one query per trial and
    metric). Raises ``MfsearchError`` for an unknown name or id, and, with ``require_finished``,
    for a sweep with no finished trial.
    """
    uri, client = open_client(tracking_uri)
    try:
        experiment, parent = _find_parent(client, ref, uri)
        runs = _children(client, experiment.experiment_id, parent.info.run_id)
        trials = tuple(_record(client, run, history) for run in runs)
        settings = _settings(client, parent.info.run_id)
    except MfsearchError:
        raise
    except Exception as err:  # an unreachable server or an unreadable store: one line
        raise MfsearchError(f"cannot read the MLflow store {uri}: {type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}") from err
    sweep = Sweep(experiment.name, experiment.experiment_id, parent.info.run_id, uri, settings,
                  tuple(sorted(trials, key=lambda t: (t.is_baseline is False, t.family, t.trial_id))),
                  dict(parent.data.params))
    if require_finished and not sweep.finished:
        counts = {}
        for t in sweep.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trial runs"
        raise MfsearchError(f"sweep {sweep.name!r} has no finished trials yet ({seen}); "
                            f"wait for it or continue it with `mfsearch run --resume {sweep.name}`")
    return sweep


def _find_parent(client, ref: str, uri: str):
    experiment = client.get_experiment_by_name(ref)
    if experiment is not None and experiment.lifecycle_stage == "active":
        from mlflow.entities import ViewType
        parents = client.search_runs([experiment.experiment_id], f"tags.`{SWEEP_KIND_TAG}` = 'sweep'",
                                     run_view_type=ViewType.ACTIVE_ONLY, order_by=["attributes.start_time DESC"])
        if not parents:
            raise MfsearchError(f"experiment {ref!r} in {uri} holds no sweep run (one made by `mfsearch run`)")
        return experiment, parents[0]
    if _RUN_ID.match(ref):
        run = _get_run(client, ref)
        if run is not None:
            experiment = client.get_experiment(run.info.experiment_id)
            if run.data.tags.get(SWEEP_KIND_TAG) == "sweep":
                return experiment, run
            parent = run.data.tags.get(PARENT_TAG)
            hint = f"; its sweep is run {parent} (experiment {experiment.name!r})" if parent else ""
            raise MfsearchError(f"run {ref} is not a sweep run{hint}")
    raise MfsearchError(f"no sweep named {ref!r} and no sweep run with that id in {uri}; "
                        f"sweeps there: {', '.join(_sweep_names(client)) or 'none'}")


def _get_run(client, run_id: str):
    from mlflow.exceptions import MlflowException
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None


def _sweep_names(client) -> list[str]:
    from mlflow.entities import ViewType
    names = []
    for exp in client.search_experiments(view_type=ViewType.ACTIVE_ONLY):
        if client.search_runs([exp.experiment_id], f"tags.`{SWEEP_KIND_TAG}` = 'sweep'", max_results=1):
            names.append(exp.name)
    return sorted(names)


def _children(client, experiment_id: str, parent_run_id: str) -> list:
    from mlflow.entities import ViewType
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        runs += [r for r in page if TRIAL_TAG in r.data.tags]
        token = page.token
        if not token:
            return runs


def _record(client, run, history: bool) -> TrialRecord:
    tags, params = run.data.tags, run.data.params
    metrics = {k: float(v) for k, v in run.data.metrics.items()}
    epochs = tags.get(EPOCHS_TAG) or metrics.get("epochs_reached") or 0
    status = tags.get(STATUS_TAG) or ("failed" if run.info.status == "FAILED" else "running")
    curves = {}
    if history:
        for key in HISTORY_METRICS:
            points = client.get_metric_history(run.info.run_id, key)
            curves[key] = sorted((int(m.step), float(m.value)) for m in points)
    return TrialRecord(run.info.run_id, tags[TRIAL_TAG], tags.get(FAMILY_TAG, "custom"), status,
                       int(float(epochs)), metrics, _stages(params), dict(params), curves)


def _stages(params: dict[str, str]) -> tuple[StageSummary, ...]:
    stages = []
    for i in range(int(params.get("num_stages", 0) or 0)):
        p = {f: params.get(f"stage{i}.{f}") for f in STAGE_FIELDS}
        stages.append(StageSummary(p["mixer"] or "?", int(p["depth"] or 0), int(p["dim"] or 0),
                                   float(p["mlp_ratio"]) if p["mlp_ratio"] else None, p["mlp_act"], p["norm"]))
    return tuple(stages)


def _settings(client, parent_run_id: str) -> dict[str, Any]:
    """The sweep's resolved.yaml ({} for a sweep run that has none)."""
    names = {a.path for a in client.list_artifacts(parent_run_id)}
    if "resolved.yaml" not in names:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(parent_run_id, "resolved.yaml", tmp)
        return yaml.safe_load(Path(path).read_text()) or {}


def download_trial_files(sweep: Sweep, trial: TrialRecord, dest: Path) -> tuple[Path, Path]:
    """(arch.yaml, weights.safetensors) of ``trial`` downloaded into ``dest``."""
    _, client = open_client(sweep.tracking_uri)
    names = {a.path for a in client.list_artifacts(trial.run_id)}
    missing = [n for n in ("arch.yaml", "weights.safetensors") if n not in names]
    if missing:
        raise MfsearchError(f"trial run {trial.run_id} ({trial.label}) has no {' or '.join(missing)} artifact "
                            f"(a trial stopped before its first checkpoint?)")
    dest.mkdir(parents=True, exist_ok=True)
    arch = Path(client.download_artifacts(trial.run_id, "arch.yaml", str(dest)))
    weights = Path(client.download_artifacts(trial.run_id, "weights.safetensors", str(dest)))
    return arch, weights


def artifact_text(tracking_uri: str, run_id: str, name: str) -> str | None:
    """A small text artifact of a run (``arch.yaml``, ``spec.yaml``, ``confirm.json``), None when absent."""
    _, client = open_client(tracking_uri)
    if name not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, name, tmp)).read_text()


def latest_confirmation(sweep: Sweep):
    """The newest finished ``ConfirmReport`` of ``sweep`` (None when it has none)."""
    from mlflow.entities import ViewType
    _, client = open_client(sweep.tracking_uri)
    runs = client.search_runs([sweep.experiment_id], f"tags.`{KIND_TAG}` = 'confirm' and "
                                                     f"tags.`{SWEEP_RUN_TAG}` = '{sweep.parent_run_id}' and "
                                                     "attributes.status = 'FINISHED'",
                              run_view_type=ViewType.ACTIVE_ONLY, order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs:
        return None
    text = artifact_text(sweep.tracking_uri, runs[0].info.run_id, "confirm.json")
    from .confirmation import ConfirmReport
    return ConfirmReport.from_dict(json.loads(text)) if text else None
