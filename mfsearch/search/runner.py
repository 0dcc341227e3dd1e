"""Run a sweep: validate, open the sweep's MLflow run, run trials on Ray Tune, summarise.

The only module that starts Ray or builds the Tuner, so the next Ray API change touches one file.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ..data import ImageDataModule, check_data
from ..data.locate import resolve_root
from ..errors import ConfigError, MfsearchError
from .. import metrics as M
from ..tracking import MlflowRun, Store, check_reachable, flatten, resolve_tracking_uri
from ..tracking.mlflow_views import publish_sweep_view
from ..tracking.tags import INTERRUPTED_TAG, KIND_TAG, REJECTIONS_TAG, TRIAL_TAG
from .candidates import baseline_candidates, feasibility
from .proposers import GridProposer
from .ray_cluster import check_cluster, start_ray  # noqa: F401  (re-exported: confirm starts Ray the same way)
from .space import SearchSpec, load_search_spec
from .state_integrity import StateSigner, check_state

STATE_FILE = "mfsearch_state.json"
SPACE_COPY = "space.yaml"
SPEC_ARTIFACT = "spec.yaml"


@dataclasses.dataclass
class SweepOptions:
    address: str | None = None          # an existing Ray cluster ("auto", "ray://host:10001"); None: local
    storage_path: str | None = None     # Tune results (default ./mfsearch_runs); shared storage on clusters
    tracking_uri: str | None = None     # MLflow (default sqlite:///./mlflow.db)
    name: str | None = None             # experiment name (Tune folder and MLflow experiment)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted spec overrides
    status_every: float = 15.0
    trust_state: bool = False           # --resume: re-sign the folder's state instead of verifying it


@dataclasses.dataclass
class SweepResult:
    name: str
    experiment_path: str
    tracking_uri: str
    parent_run_id: str
    trials: list[dict]      # family, status, metrics, config per trial
    rejected: int
    rejection_reasons: dict
    failed: dict[str, str]
    wall_time_s: float
    experiment_id: str | None = None
    oneshot: dict | None = None     # a one-shot sweep's supernet and search summary (mfsearch.oneshot)

    @property
    def stopped_baselines(self) -> list[str]:
        """Baselines that ended below full fidelity (never by the scheduler: by an error or a limit)."""
        full = max((int(t["metrics"].get(M.EPOCHS_REACHED, 0)) for t in self.trials), default=0)
        return [t["family"] for t in self.trials if t["family"] != "searched"
                and int(t["metrics"].get(M.EPOCHS_REACHED, 0)) < full]


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, field: str) -> str:
    """A sweep or confirmation name becomes a folder under --storage-path and an MLflow experiment:
    a name, never a path (no separators, no '..', nothing hidden)."""
    if not _NAME.match(str(name)) or ".." in str(name):
        raise ConfigError(field, f"{str(name)[:80]!r} is not a name: letters, digits, '.', '_' and '-' "
                                 "(starting with a letter or digit, at most 128 characters)")
    return str(name)


def default_storage(path: str | None) -> Path:
    return Path(path or "mfsearch_runs").resolve()


def prepare_sweep(spec_path: str, options: SweepOptions) -> tuple[SearchSpec, int, int, list]:
    """Everything that can fail on user input, before Ray starts or MLflow is touched."""
    spec = load_search_spec(spec_path, options.overrides)
    try:
        return _check_spec(spec)
    except ConfigError as err:
        raise (err if err.source else err.with_source(str(spec_path))) from None


def _check_spec(spec: SearchSpec) -> tuple[SearchSpec, int, int, list]:
    check_data(spec.data)
    datamodule = ImageDataModule(spec.data, spec.recipe.augment, batch_size=spec.recipe.batch_size)
    try:
        datamodule.check_batch_size()   # else every trial would fail on it
    except ConfigError as err:
        raise ConfigError("train.overrides.batch_size", err.message) from None
    num_classes, img_size = datamodule.num_classes, datamodule.img_size
    baselines = baseline_candidates(spec, num_classes, img_size)
    if spec.search.algorithm == "one-shot":
        from ..oneshot.space import check_oneshot_space
        check_oneshot_space(spec)
        if spec.search.num_samples == 0:
            raise ConfigError("search.num_samples", "is 0: a one-shot search evaluates num_samples sub-networks")
    elif spec.search.algorithm == "grid":
        GridProposer(spec.space, spec.search.seed)  # raises for float ranges
    elif spec.search.algorithm.startswith("optuna"):
        from .proposers import OptunaProposer
        OptunaProposer(spec.space, spec.search.seed, spec.objectives, spec.search.algorithm)
    if spec.search.num_samples == 0:
        if not baselines:
            raise ConfigError("search.num_samples", "is 0 and there are no baselines: nothing to run")
        return spec, num_classes, img_size, baselines
    ok, tried, seen = feasibility(spec, num_classes, img_size)
    if ok == 0:
        macs, params = seen["macs"], seen["params"]
        ranges = (f"sampled MACs {macs[0]:,}-{macs[1]:,}, params {params[0]:,}-{params[1]:,}" if macs
                  else "no sampled candidate was even a valid architecture")
        raise ConfigError("constraints", f"no candidate of the space meets them ({tried} sampled; {ranges})")
    return spec, num_classes, img_size, baselines


def run_sweep(spec_path: str | None, options: SweepOptions, resume: str | None = None) -> SweepResult:
    storage = default_storage(options.storage_path)
    if resume:
        state_dir = storage / check_name(resume, "--resume")
        state_file = state_dir / STATE_FILE
        if not state_file.exists():
            known = sorted(p.name for p in storage.glob("*") if (p / STATE_FILE).exists()) if storage.exists() else []
            raise MfsearchError(f"--resume: no sweep named {resume!r} in {storage}; found: {', '.join(known) or 'none'}")
        check_state(state_dir, "sweep", options.trust_state)   # before reading anything of it
        state = json.loads(state_file.read_text())
        options = dataclasses.replace(options, tracking_uri=state["tracking_uri"], name=state["name"],
                                      overrides=state["overrides"])
        spec_path = str(state_dir / SPACE_COPY)
    spec, num_classes, img_size, baselines = prepare_sweep(spec_path, options)
    name = check_name(options.name or spec.name, "--name" if options.name else "name")
    tracking_uri = resolve_tracking_uri(options.tracking_uri)
    check_reachable(tracking_uri)
    check_cluster(options.address)
    experiment_path = storage / name
    if not resume and (experiment_path / STATE_FILE).exists():
        raise MfsearchError(f"a sweep named {name!r} already exists in {storage}: continue it with "
                            f"`mfsearch run --resume {name}` or pick another --name")

    if resume:
        parent = MlflowRun.attach(tracking_uri, name, state["parent_run_id"])
    else:
        parent = MlflowRun(tracking_uri, name, run_name=f"sweep-{name}", tags={KIND_TAG: "sweep"}).start()
        try:
            experiment_path.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec_path, experiment_path / SPACE_COPY)
            (experiment_path / STATE_FILE).write_text(json.dumps({
                "name": name, "tracking_uri": tracking_uri, "parent_run_id": parent.run_id,
                "overrides": options.overrides, "source": str(Path(spec_path).resolve())}, indent=2))
            parent.log_params(_settings(spec))
            publish_sweep_view(parent.store, parent.experiment_id, parent.run_id)
            parent.log_artifact(spec_path)
            parent.log_text(yaml.safe_dump(_resolved(spec, num_classes, img_size), sort_keys=False), "resolved.yaml")
            # The space as this sweep ran it (command-line overrides applied): what `confirm` retrains from.
            parent.log_text(yaml.safe_dump(spec.raw, sort_keys=False), SPEC_ARTIFACT)
        except BaseException as err:
            parent.fail(err)
            raise

    started = time.monotonic()
    fit = _fit
    if spec.search.algorithm == "one-shot":
        from ..oneshot.runner import fit_oneshot as fit
    try:
        result = fit(spec, baselines, num_classes, img_size, name, storage, tracking_uri, parent.run_id,
                      options, resume is not None)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            parent.set_tags({INTERRUPTED_TAG: "true"})  # left RUNNING: `--resume` continues it
        else:
            parent.fail(err)
        raise
    result.wall_time_s = time.monotonic() - started
    result.experiment_id = parent.experiment_id
    _add_latency(result, tracking_uri, parent)
    parent.log_metrics({"sweep/trials": len(result.trials), "sweep/failed": len(result.failed),
                        "sweep/rejected": result.rejected, "sweep/wall_time_s": result.wall_time_s}, step=0)
    parent.set_tags({REJECTIONS_TAG: json.dumps(result.rejection_reasons)})
    parent.finish()
    return result


def _add_latency(result: SweepResult, tracking_uri: str, parent: MlflowRun) -> None:
    """Comparable ``cost/latency_ms``, measured serially now that no trial trains (``sweep_latency``)."""
    from ..latency import LatencyProtocol
    from .sweep_latency import measure_sweep_latency

    protocol = LatencyProtocol()
    parent.log_params(protocol.to_params())
    latency = measure_sweep_latency(tracking_uri, parent.experiment_id, parent.run_id, protocol)
    for t in result.trials:
        trial_id = str(t["metrics"].get("trial_id"))
        if trial_id in latency:
            t["metrics"][M.COST_LATENCY_MS] = latency[trial_id]


def _fit(spec: SearchSpec, baselines: list, num_classes: int, img_size: int, name: str, storage: Path,
         tracking_uri: str, parent_run_id: str, options: SweepOptions, resume: bool) -> SweepResult:
    from ray import tune

    from .console import ConsoleProgress
    from .mlflow_callback import MlflowTrialLogger
    from .searcher import CandidateSearcher

    start_ray(options.address)
    res = spec.resources
    trainable = make_trainable(spec)
    total = len(baselines) + spec.search.num_samples
    concurrency = trial_concurrency(spec)
    path = str(storage / name)
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        if resume:  # killed before Tune saved any state: start over, dropping the partial children
            _delete_children(tracking_uri, name, parent_run_id)
        searcher = CandidateSearcher(spec, baselines, num_classes, img_size)
        scheduler = make_scheduler(spec)
        callbacks = [MlflowTrialLogger(tracking_uri, name, parent_run_id, spec.train.epochs),
                     ConsoleProgress(total, concurrency, spec.train.epochs, every=options.status_every),
                     StateSigner(Path(path))]
        tuner = make_tuner(spec, trainable, searcher, scheduler, total, concurrency, name, storage, callbacks)
    print(f"sweep {name}: {total} trials ({len(baselines)} baselines + {spec.search.num_samples} searched), "
          f"{concurrency} at a time, {res.cpus_per_trial:g} CPU / {res.gpus_per_trial:g} GPU each; "
          f"MLflow {tracking_uri}", flush=True)
    grid = fit_signed(tuner, Path(path))
    if resume:
        # Trials the killed driver had started after Tune's last saved state are unknown to the
        # restored experiment (their candidates are suggested again under new ids): drop their runs.
        _delete_children(tracking_uri, name, parent_run_id,
                         keep={str((r.metrics or {}).get("trial_id")) for r in grid})
    # Everything below comes from public APIs: the ResultGrid, and the statistics the searcher
    # saved with the experiment (a restored Tuner holds its own searcher, not ours).
    trials, failed = [], {}
    for r in grid:
        config = r.config or {}
        candidate = config.get("candidate", {})
        metrics = dict(r.metrics or {})
        trials.append({"family": candidate.get("family"), "arch": candidate.get("arch"),
                       "metrics": metrics, "error": str(r.error) if r.error else None, "path": r.path})
        if r.error:
            failed[str(metrics.get("trial_id") or Path(r.path).name)] = _one_line(r.error)
    from .searcher import read_stats
    stats = read_stats(path)
    return SweepResult(name, path, tracking_uri, parent_run_id, trials, stats["rejected"],
                       stats["rejection_reasons"], failed, 0.0)


def _one_line(error: BaseException) -> str:
    """The last line of a trial's error: the exception itself, not Ray's wrapping traceback."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def make_trainable(spec: SearchSpec):
    """``run_trial`` bound to what every trial of the spec runs, parsed and validated once here:
    the data (root made absolute) and the recipe, as typed configs (Ray puts them in its object
    store once); each trial's architecture comes resolved in its config. Trials parse nothing."""
    from ray import tune

    from .trial import TrialPlan, run_trial

    res = spec.resources
    root = resolve_root(spec.data)
    data = dataclasses.replace(spec.data, root=str(root)) if root is not None else spec.data
    plan = TrialPlan(data=data, recipe=spec.recipe, threads=max(1, int(res.cpus_per_trial)))
    return tune.with_resources(tune.with_parameters(run_trial, plan=plan),
                               {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial})


def trial_concurrency(spec: SearchSpec) -> int:
    import ray

    res = spec.resources
    return res.max_concurrent or max(1, int(ray.cluster_resources().get("CPU", 1) // res.cpus_per_trial))


def make_tuner(spec: SearchSpec, trainable, searcher, scheduler, total: int, concurrency: int, name: str,
               storage: Path, callbacks: list):
    """A new Tune experiment ``storage/name`` (``Tuner.restore`` reopens it)."""
    from ray import tune

    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=total,
                                    max_concurrent_trials=concurrency, trial_dirname_creator=trial_dirname,
                                    reuse_actors=True),  # skip re-importing torch & co per trial
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


def fit_signed(tuner, path: Path):
    """``tuner.fit()``, then sign the state Tune saved last, interrupted or not (``--resume`` checks it)."""
    try:
        return tuner.fit()
    finally:
        StateSigner(Path(path)).sign()


def make_scheduler(spec: SearchSpec):
    """None (FIFO: every trial to full fidelity) or successive halving that never stops a baseline."""
    from .mo_asha import MOASHAScheduler, is_baseline_trial

    objectives = [(M.during_sweep(o.metric), o.mode) for o in spec.objectives]
    if spec.scheduler.name == "fifo":
        return None
    if spec.scheduler.name == "asha":
        objectives = objectives[:1]
    return MOASHAScheduler(objectives, max_t=spec.train.epochs, grace_period=spec.scheduler.grace_period,
                           reduction_factor=spec.scheduler.reduction_factor, protect=is_baseline_trial)


def trial_dirname(trial) -> str:
    """Short trial folders (Tune's default packs the whole config into the name)."""
    return f"trial_{trial.trial_id}"


def _delete_children(tracking_uri: str, experiment: str, parent_run_id: str, keep: set[str] = frozenset()) -> None:
    """Delete the sweep's child runs, except those of the trials in ``keep``."""
    store = Store.open(tracking_uri)
    exp = store.experiment(experiment)
    if exp is not None:
        for run in store.children(exp.experiment_id, parent_run_id):
            if run.tags.get(TRIAL_TAG) not in keep:
                store.delete_run(run.run_id)


def _settings(spec: SearchSpec) -> dict[str, str]:
    return {
        "space": spec.source, "search.algorithm": spec.search.algorithm,
        "search.num_samples": str(spec.search.num_samples), "search.seed": str(spec.search.seed),
        "scheduler": spec.scheduler.name, "objectives": ", ".join(f"{o.metric}:{o.mode}" for o in spec.objectives),
        "train.epochs": str(spec.train.epochs), "train.recipe": spec.train.recipe,
        **flatten("data", dataclasses.asdict(spec.data)),
        "resources.cpus_per_trial": str(spec.resources.cpus_per_trial),
        "resources.gpus_per_trial": str(spec.resources.gpus_per_trial),
        "constraints": json.dumps(dataclasses.asdict(spec.constraints)),
    }


def _resolved(spec: SearchSpec, num_classes: int, img_size: int) -> dict:
    return {"name": spec.name, "num_classes": num_classes, "img_size": img_size,
            "data": dataclasses.asdict(spec.data), "recipe": spec.recipe.to_dict(),
            "search": dataclasses.asdict(spec.search), "scheduler": dataclasses.asdict(spec.scheduler),
            "resources": dataclasses.asdict(spec.resources), "constraints": dataclasses.asdict(spec.constraints),
            "objectives": [dataclasses.asdict(o) for o in spec.objectives]}
