"""`mfsearch confirm`: retrain a sweep's chosen architectures and every baseline with the same seeds
at a larger budget, on Ray, and judge the sweep's claims (see ``analysis.confirmation``).

Budget: by default ``EPOCHS_FACTOR`` x the sweep's epochs on ``IMAGES_FACTOR`` x its training images
(capped by the split), i.e. 4x a full-fidelity trial's compute; ``--epochs`` and ``--set`` change it.
Subsets grow by adding images (``data.sampling``), so the confirmation sees the sweep's images and more.

MLflow layout, in the sweep's experiment: one ``confirm`` run (tags: the sweep's run id) holding one
run per architecture (tags: its source trial run; metrics: mean and interval of val/acc1 and
test/acc1), each holding one run per seed. The sweep's run gets ``confirm/kendall_tau``.
Resume: the Tune experiment and a state file live in ``<storage>/<name>``; ``--resume`` restores
both, deletes partial runs of seeds that restart, and leaves finished ones alone.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..analysis.confirmation import (ConfirmedArch, ConfirmReport, build_claims, interval_metrics,
                                     rank_agreement)
from ..analysis.fronts import COST_AXES, build_front
from ..analysis.sweep_data import Sweep, TrialRecord, artifact_text, load_sweep
from ..data import ImageDataModule, check_data
from ..errors import ConfigError, MfsearchError
from ..tracking import MlflowRun, Store, arch_params
from ..tracking.mlflow_views import publish_confirm_view
from ..tracking.tags import (ARCH_TAG, CLAIMS_TAG, CONFIRM_TAG, FAMILY_TAG, KIND_TAG, SEED_TAG, SEEDS_MISSING_TAG,
                             SOURCE_TAG, SOURCE_TRIAL_TAG, SWEEP_RUN_TAG, TRIAL_TAG)
from .ray_cluster import check_cluster
from .runner import (SPEC_ARTIFACT, check_name, default_storage, fit_signed, make_trainable, make_tuner, start_ray,
                     trial_concurrency)
from .space import SearchSpec, parse_search_spec
from .state_integrity import StateSigner, check_state

EPOCHS_FACTOR = 2
IMAGES_FACTOR = 2
STATE_FILE = "confirm_state.json"
SELECTIONS = ("pareto", "top-k", "run-id")


@dataclasses.dataclass
class ConfirmOptions:
    selection: str = "pareto"                 # pareto | top-k | run-id
    top_k: int | None = None
    run_ids: tuple[str, ...] = ()
    seeds: int = 3
    first_seed: int = 1
    epochs: int | None = None                 # default EPOCHS_FACTOR x the sweep's
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted spec overrides (--set)
    address: str | None = None
    storage_path: str | None = None
    tracking_uri: str | None = None
    name: str | None = None                   # default <sweep>-confirm
    resume: bool = False
    status_every: float = 15.0
    trust_state: bool = False                 # --resume: re-sign the folder's state instead of verifying it


@dataclasses.dataclass(frozen=True)
class Chosen:
    trial: TrialRecord
    arch: dict


def run_confirm(sweep_ref: str, options: ConfirmOptions) -> ConfirmReport:
    """Validate everything, then train (or resume) and judge. Bad input raises before any run exists."""
    _check_options(options)
    sweep = load_sweep(sweep_ref, options.tracking_uri)
    name = options.name or f"{sweep.name}-confirm"
    check_name(name, "--name")
    path = default_storage(options.storage_path) / name
    if options.resume and (path / STATE_FILE).exists():
        check_state(path, "confirmation", options.trust_state)   # before reading anything of it
    state = _read_state(path) if options.resume else None
    if options.resume and state is None:
        raise MfsearchError(f"--resume: no confirmation named {name!r} in {path.parent}")
    if state is None and (path / STATE_FILE).exists():
        raise MfsearchError(f"a confirmation named {name!r} already exists in {path.parent}: continue it with "
                            f"--resume or pick another --name")
    if state is not None:
        options = dataclasses.replace(options, **{k: v for k, v in state["options"].items() if k != "resume"},
                                      resume=True)
    chosen = choose(sweep, options)
    spec = confirm_spec(sweep, options)
    seeds = tuple(range(options.first_seed, options.first_seed + options.seeds))
    check_cluster(options.address)

    started = time.monotonic()
    if state is None:
        state = _open_runs(sweep, chosen, spec, seeds, options, name, path)
    configs = [_trial_config(c, s, state) for s in seeds for c in chosen]   # seed-major: balanced if stopped
    _fit(spec, configs, sweep, name, path, state, options)
    report = _judge(sweep, chosen, seeds, spec, state, time.monotonic() - started)
    _log_report(sweep, report, state)
    return report


def _check_options(o: ConfirmOptions) -> None:
    if o.selection not in SELECTIONS:
        raise ConfigError("selection", f"{o.selection!r} is not one of {', '.join(SELECTIONS)}")
    if o.seeds < 1:
        raise ConfigError("--seeds", f"must be at least 1, got {o.seeds} (3 or more for an interval that means something)")
    if o.epochs is not None and o.epochs < 1:
        raise ConfigError("--epochs", f"must be at least 1, got {o.epochs}")
    if o.selection == "top-k" and (o.top_k is None or o.top_k < 1):
        raise ConfigError("--top-k", f"must be at least 1, got {o.top_k}")
    if o.selection == "run-id" and not o.run_ids:
        raise ConfigError("--run-id", "give at least one trial run id")


def choose(sweep: Sweep, o: ConfirmOptions) -> list[Chosen]:
    """The searched architectures to confirm, then every baseline of the sweep (each once)."""
    finished = sweep.finished
    searched = [t for t in finished if not t.is_baseline]
    if o.selection == "run-id":
        picked = [sweep.trial(run_id) for run_id in o.run_ids]    # raises for a run not in the sweep
        for t in picked:
            if not t.finished:
                raise MfsearchError(f"run {t.run_id} ({t.label}) did not finish (status {t.status}): nothing to confirm")
    elif o.selection == "top-k":
        top = max(t.epochs for t in searched) if searched else 0
        picked = sorted((t for t in searched if t.epochs == top), key=lambda t: -t.metrics["val/acc1"])[:o.top_k]
    else:
        front = build_front(finished, COST_AXES[0])
        picked = [m.trial for m in front.members if not m.trial.is_baseline] if front else []
    baselines, seen = [], set()
    for t in sorted((t for t in finished if t.is_baseline), key=lambda t: (-t.epochs, t.family)):
        if t.family not in seen:
            seen.add(t.family)
            baselines.append(t)
    picked = [t for t in picked if t.is_baseline is False] + baselines + \
        [t for t in picked if t.is_baseline and t.family not in seen]
    out = []
    for t in picked:
        text = artifact_text(sweep.tracking_uri, t.run_id, "arch.yaml")
        if text is None:
            raise MfsearchError(f"trial run {t.run_id} ({t.label}) has no arch.yaml artifact")
        out.append(Chosen(t, yaml.safe_load(text)))
    return out


def confirm_spec(sweep: Sweep, o: ConfirmOptions) -> SearchSpec:
    """The sweep's own space (as it ran) at the confirmation budget, with ``--set`` on top."""
    text = artifact_text(sweep.tracking_uri, sweep.parent_run_id, SPEC_ARTIFACT)
    if text is None:
        raise MfsearchError(f"sweep run {sweep.parent_run_id} has no {SPEC_ARTIFACT} artifact "
                            "(made by an older mfsearch): rerun the sweep to confirm it")
    raw = yaml.safe_load(text)
    source = f"{sweep.name}/{SPEC_ARTIFACT}"
    base = parse_search_spec(raw, source, {})
    sweep_epochs = (base.search.oneshot.standalone_epochs if base.search.algorithm == "one-shot"
                    else base.train.epochs)
    budget: dict[str, Any] = {"train.epochs": o.epochs or EPOCHS_FACTOR * sweep_epochs,
                              "scheduler.name": "fifo"}
    if base.data.train_subset is not None and "data.train_subset" not in o.overrides:
        full = ImageDataModule(dataclasses.replace(base.data, train_subset=None)).train_size
        budget["data.train_subset"] = min(full, IMAGES_FACTOR * base.data.train_subset)
    spec = parse_search_spec(raw, source, {**budget, **o.overrides})
    check_data(spec.data)
    return spec


def _read_state(path: Path) -> dict | None:
    file = path / STATE_FILE
    return json.loads(file.read_text()) if file.exists() else None


def _open_runs(sweep: Sweep, chosen: list[Chosen], spec: SearchSpec, seeds: tuple[int, ...], o: ConfirmOptions,
               name: str, path: Path) -> dict:
    """The confirm run and one run per architecture, and the state file that finds them again."""
    from ..config import parse_arch

    parent = MlflowRun(sweep.tracking_uri, sweep.name, run_name=name,
                       tags={KIND_TAG: "confirm", SWEEP_RUN_TAG: sweep.parent_run_id}).start()
    try:
        parent.log_params({"sweep": sweep.name, "sweep_run_id": sweep.parent_run_id, "selection": o.selection,
                           "seeds": ",".join(map(str, seeds)), "train.epochs": spec.train.epochs,
                           "data.train_subset": spec.data.train_subset, "sweep.epochs": _sweep_epochs(sweep),
                           "test": "paired t-test over shared seeds, 95 % interval"})
        parent.log_text(yaml.safe_dump(spec.raw, sort_keys=False), SPEC_ARTIFACT)
        arch_runs = {}
        for c in chosen:
            run = MlflowRun(sweep.tracking_uri, sweep.name, run_name=c.trial.label, parent_run_id=parent.run_id,
                            store=parent.store,
                            tags={KIND_TAG: "confirm-arch", CONFIRM_TAG: parent.run_id, SOURCE_TAG: c.trial.run_id,
                                  FAMILY_TAG: c.trial.family, SOURCE_TRIAL_TAG: c.trial.trial_id}
                            ).start()
            run.log_params({**arch_params(parse_arch(c.arch)), "family": c.trial.family})
            arch_runs[c.trial.trial_id] = run.run_id
        publish_confirm_view(parent.store, parent.experiment_id)
        path.mkdir(parents=True, exist_ok=True)
        state = {"confirm_run_id": parent.run_id, "arch_runs": arch_runs, "sweep_run_id": sweep.parent_run_id,
                 "options": {k: v for k, v in dataclasses.asdict(o).items() if k not in ("resume", "status_every", "trust_state")}}
        tmp = path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path / STATE_FILE)
        return state
    except BaseException as err:
        parent.fail(err)
        raise


def _trial_config(c: Chosen, seed: int, state: dict) -> dict:
    key = c.trial.trial_id
    return {"candidate": {"family": c.trial.family, "arch": c.arch, "params": {}}, "seed": seed, "run_test": True,
            "parent_run_id": state["arch_runs"][key], "run_name": f"{c.trial.label} seed {seed}",
            "tags": {SEED_TAG: str(seed), ARCH_TAG: key, CONFIRM_TAG: state["confirm_run_id"]}}


def _fit(spec: SearchSpec, configs: list[dict], sweep: Sweep, name: str, path: Path, state: dict,
         o: ConfirmOptions) -> None:
    from ray import tune

    from .console import ConsoleProgress
    from .mlflow_callback import MlflowTrialLogger
    from .queue_searcher import QueueSearcher

    start_ray(o.address)
    trainable = make_trainable(spec)
    concurrency = trial_concurrency(spec)
    if o.resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        if o.resume:  # killed before Tune saved any state: start the seeds over
            _delete_seed_runs(sweep, state)
        callbacks = [MlflowTrialLogger(sweep.tracking_uri, sweep.name, state["confirm_run_id"], spec.train.epochs),
                     ConsoleProgress(len(configs), concurrency, spec.train.epochs, every=o.status_every,
                                     noun="trainings", search=False),
                     StateSigner(path)]
        tuner = make_tuner(spec, trainable, QueueSearcher(configs), None, len(configs), concurrency, name,
                           path.parent, callbacks)
    print(f"confirm {sweep.name}: {len(configs)} trainings ({len(configs) // max(1, o.seeds)} architectures x "
          f"{o.seeds} seeds) of {spec.train.epochs} epochs on "
          f"{spec.data.train_subset or 'all'} training images, {concurrency} at a time", flush=True)
    grid = fit_signed(tuner, path)
    if o.resume:  # seeds started after Tune's last saved state run again under new ids: drop their partial runs
        _delete_seed_runs(sweep, state, keep={str((r.metrics or {}).get("trial_id")) for r in grid})


def _delete_seed_runs(sweep: Sweep, state: dict, keep: set[str] = frozenset()) -> None:
    store = Store.open(sweep.tracking_uri)
    for run in _seed_runs(store, sweep, state):
        if run.tags.get(TRIAL_TAG) not in keep:
            store.delete_run(run.run_id)


def _seed_runs(store: Store, sweep: Sweep, state: dict) -> list:
    """The live per-seed runs of this confirmation (deleted partial attempts do not count)."""
    return store.search_runs([sweep.experiment_id], f"tags.`{CONFIRM_TAG}` = '{state['confirm_run_id']}' "
                                                    f"and tags.`{SEED_TAG}` != ''")


def _seed_results(sweep: Sweep, state: dict) -> dict[str, dict[str, dict[int, float]]]:
    """arch key -> {"val": {seed: acc}, "test": {seed: acc}} from the finished seed runs in MLflow
    (the store, not Tune's memory: a resumed confirmation sees the seeds the first attempt finished)."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for run in _seed_runs(Store.open(sweep.tracking_uri), sweep, state):
        if run.status != "FINISHED":
            continue
        tags, metrics = run.tags, run.metrics
        entry = out.setdefault(tags[ARCH_TAG], {"val": {}, "test": {}})
        seed = int(tags[SEED_TAG])
        if "val/acc1" in metrics:
            entry["val"][seed] = float(metrics["val/acc1"])
        if "test/acc1" in metrics:
            entry["test"][seed] = float(metrics["test/acc1"])
    return out


def _sweep_epochs(sweep: Sweep) -> int:
    return max((t.epochs for t in sweep.finished), default=0)


def _judge(sweep: Sweep, chosen: list[Chosen], seeds: tuple[int, ...], spec: SearchSpec, state: dict,
           wall: float) -> ConfirmReport:
    results = _seed_results(sweep, state)
    archs = []
    for c in chosen:
        t, r = c.trial, results.get(c.trial.trial_id, {"val": {}, "test": {}})
        archs.append(ConfirmedArch(t.trial_id, t.label, t.family, t.run_id, t.describe(), t.metrics["cost/macs"],
                                   t.metrics["cost/params"], t.metrics.get("val/acc1"), t.epochs,
                                   dict(sorted(r["val"].items())), dict(sorted(r["test"].items())),
                                   state["arch_runs"][t.trial_id]))
    front = build_front(sweep.finished, COST_AXES[0])
    claimed = {(m.trial.trial_id, b.trial_id) for m in (front.members if front else ()) for b in m.dominates}
    tau, ranked = rank_agreement(archs)
    return ConfirmReport(sweep.name, sweep.parent_run_id, state["confirm_run_id"], seeds, spec.train.epochs,
                         spec.data.train_subset, _sweep_epochs(sweep), tuple(archs), build_claims(archs, claimed),
                         tau, ranked, wall, sweep.experiment_id)


def _log_report(sweep: Sweep, report: ConfirmReport, state: dict) -> None:
    import math

    store = Store.open(sweep.tracking_uri)   # one connection for every run written below
    for a in report.archs:
        run = MlflowRun.attach(sweep.tracking_uri, sweep.name, a.run_id, store=store)
        run.log_metrics(interval_metrics(a), step=0)
        verdicts = {report.arch(c.baseline).label: c.verdict for c in report.claims_of(a.key)}
        if verdicts:
            run.set_tags({CLAIMS_TAG: json.dumps(verdicts)})
        missing = [s for s in report.seeds if s not in a.val]
        if missing:  # a failed seed is recorded in its own run; here it only shrinks the sample
            run.set_tags({SEEDS_MISSING_TAG: ",".join(map(str, missing))})
        run.finish()
    parent = MlflowRun.attach(sweep.tracking_uri, sweep.name, report.confirm_run_id, store=store)
    counts = report.counts()
    metrics = {f"confirm/claims_{k}": v for k, v in counts.items()}
    if not math.isnan(report.kendall_tau):
        metrics["confirm/kendall_tau"] = report.kendall_tau
    metrics["confirm/wall_time_s"] = report.wall_time_s
    parent.log_metrics(metrics, step=0)
    parent.log_text(json.dumps(report.to_dict(), indent=2) + "\n", "confirm.json")
    parent.finish()
    sweep_run = MlflowRun.attach(sweep.tracking_uri, sweep.name, sweep.parent_run_id, store=store)
    if not math.isnan(report.kendall_tau):
        sweep_run.log_metrics({"confirm/kendall_tau": report.kendall_tau}, step=0)
    sweep_run.set_tags({CONFIRM_TAG: report.confirm_run_id})
