"""MLflow for a one-shot sweep, written by the driver alone (as for a from-scratch sweep).

- ``supernet`` child run (``mfsearch.kind = supernet``, no trial tag, so fronts never rank it):
  per-epoch ``train/loss``, probe ``val/acc1``, each mixer's share of updates; continued, not
  duplicated, when the trial is retried or the sweep resumed.
- One trial-like child run per front member and per baseline family, inherited accuracy tagged
  ``mfsearch.accuracy = inherited``: what ``pareto``, ``dashboard``, ``export``, ``confirm`` read.
- The sweep run: ``oneshot_evaluated.csv`` (every evaluated sub-network), ``oneshot/*`` metrics.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ray.tune import Callback

from .. import metrics as M
from ..config import parse_arch
from ..interop import save_weights
from ..tracking import MlflowRun, Store, arch_params
from ..tracking.tags import (ACCURACY_TAG, EPOCHS_TAG, FAMILY_TAG, KIND_TAG, STATUS_TAG, TRIAL_TAG)

SUPERNET_KIND = "supernet"
EVALUATED_ARTIFACT = "oneshot_evaluated.csv"


def supernet_run(tracking_uri: str, experiment: str, parent_run_id: str, spec) -> str:
    """The sweep's supernet run: found again on resume, else created."""
    store = Store.open(tracking_uri)
    exp = store.experiment(experiment)
    if exp is not None:
        found = store.children(exp.experiment_id, parent_run_id, f"tags.`{KIND_TAG}` = '{SUPERNET_KIND}'")
        if found:
            return found[0].run_id
    run = MlflowRun(tracking_uri, experiment, run_name=f"supernet-{experiment}", parent_run_id=parent_run_id,
                    tags={KIND_TAG: SUPERNET_KIND}, store=store).start()
    o = spec.search.oneshot
    run.log_params({"sampling": o.sampling, "paths_per_step": o.paths_per_step or "default",
                    "epochs": spec.train.epochs, "evaluations": spec.search.num_samples})
    return run.run_id


def delete_members(tracking_uri: str, experiment: str, parent_run_id: str) -> None:
    """The sweep's member runs (trial-tagged children), so a resumed driver logs them once."""
    store = Store.open(tracking_uri)
    exp = store.experiment(experiment)
    if exp is not None:
        for run in store.children(exp.experiment_id, parent_run_id):
            if TRIAL_TAG in run.tags:
                store.delete_run(run.run_id)


class SupernetLogger(Callback):
    """Per-epoch supernet metrics to its MLflow run, and a console line per epoch / search update."""

    def __init__(self, tracking_uri: str, experiment: str, run_id: str, epochs: int, evaluations: int,
                 every: float = 15.0):
        self.tracking_uri, self.experiment, self.run_id = tracking_uri, experiment, run_id
        self.epochs, self.evaluations, self.every = epochs, evaluations, every
        self._run: MlflowRun | None = None
        self._logged_epoch: int | None = None
        self._started = time.monotonic()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_run": None, "_logged_epoch": None}

    @property
    def run(self) -> MlflowRun:
        if self._run is None:
            self._run = MlflowRun.attach(self.tracking_uri, self.experiment, self.run_id)
            steps = [s for s, _ in self._run.store.metric_history(self.run_id, M.TRAIN_LOSS)]
            self._logged_epoch = max(steps, default=0)
        return self._run

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        from .runner import EVALUATED, PHASE, REJECTED
        run = self.run
        elapsed = time.monotonic() - self._started
        if result.get(PHASE) == 0:
            epoch = int(result[M.EPOCHS_REACHED])
            if epoch > (self._logged_epoch or 0):
                keys = (M.TRAIN_LOSS, M.VAL_LOSS, M.VAL_ACC1, M.LR, M.TRAIN_IMAGES_PER_S, "supernet/unfair_paths")
                metrics = {k: float(v) for k, v in result.items()
                           if k in keys or k.startswith("supernet/mixer_share/")}
                run.log_metrics(metrics, step=epoch)
                self._logged_epoch = epoch
            print(f"supernet epoch {epoch}/{self.epochs}: train/loss {result.get(M.TRAIN_LOSS, float('nan')):.3f}, "
                  f"probe val/acc1 {result.get(M.VAL_ACC1, float('nan')):.1f} ({elapsed / 60:.1f} min)", flush=True)
        elif result.get(PHASE) == 1:
            print(f"one-shot search: {int(result.get(EVALUATED, 0))}/{self.evaluations} sub-networks evaluated, "
                  f"{int(result.get(REJECTED, 0))} rejected by constraints ({elapsed / 60:.1f} min)", flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.run.set_tags({STATUS_TAG: "completed"})
        self.run.finish()

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self.run.fail(str(getattr(trial, "error_msg", None) or "the supernet trial failed"))


def log_members(tracking_uri: str, experiment: str, parent_run_id: str, spec, supernet, result: dict,
                table: str) -> list[dict]:
    """The front members and the baselines as trial runs; returns ``SweepResult.trials`` rows."""
    parent = MlflowRun.attach(tracking_uri, experiment, parent_run_id)
    store = parent.store
    parent.log_text(table, EVALUATED_ARTIFACT)
    parent.log_params({"oneshot.sampling": result["sampling"], "oneshot.paths_per_step": result["paths_per_step"],
                       "oneshot.search": result["method"]})
    if result.get("skipped_baselines"):
        parent.set_tags({"mfsearch.oneshot.skipped_baselines": json.dumps(result["skipped_baselines"])[:5000]})
    parent.log_metrics({"oneshot/evaluated": len(result["evaluated"]), "oneshot/front_size": len(result["front"]),
                        "oneshot/rejected": result["rejected"], "oneshot/train_s": result["train_s"],
                        "oneshot/search_s": result["search_s"], "oneshot/eval_ms": result["eval_ms"],
                        "oneshot/unfair_paths": result["unfair_paths"],
                        **{f"oneshot/mixer_share/{k}": v for k, v in result["usage"].items()}}, step=0)
    epochs = spec.train.epochs
    members = [(f"front{i:04d}", result["evaluated"][i]) for i in result["front"]]
    members += [(f"baseline-{rec['family']}", rec) for rec in result["baselines"]]
    trials = []
    for trial_id, rec in members:
        cfg = parse_arch(rec["arch"])
        family = rec["family"]
        run = MlflowRun(tracking_uri, experiment, run_name=f"{family}-{trial_id}", parent_run_id=parent_run_id,
                        store=store, tags={TRIAL_TAG: trial_id, FAMILY_TAG: family, STATUS_TAG: "completed",
                                           EPOCHS_TAG: epochs, ACCURACY_TAG: "inherited"}).start()
        params = arch_params(cfg)
        params.update({f"search.{k}": v for k, v in rec["params"].items()})
        params["family"] = family
        run.log_params(params)
        metrics = {**rec["metrics"], M.EPOCHS_REACHED: epochs}
        run.log_metrics(metrics, step=epochs)
        run.log_text(cfg.to_yaml(), "arch.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.safetensors"
            save_weights(supernet.extract(cfg), weights)
            run.log_artifact(weights)
        run.finish()
        trials.append({"family": family, "arch": rec["arch"], "metrics": {**metrics, "trial_id": trial_id},
                       "error": None, "path": None})
    return trials
