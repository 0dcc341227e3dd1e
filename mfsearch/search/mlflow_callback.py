"""Tune callback on the driver that writes every trial to MLflow as a child of the sweep's run.

Why on the driver: a local SQLite store breaks under several writer processes ("database is
locked", mlflow/mlflow#6490), so trials only report to Tune and this single writer logs.
Each child run is tagged with its Tune trial id; on resume, a trial that had started but not
finished gets its partial run deleted and a fresh one, so every trial appears exactly once.
"""
from __future__ import annotations

from pathlib import Path

from ray.tune import Callback

from .. import metrics as M
from ..config import parse_arch
from ..tracking import MlflowRun, Store, arch_params
from ..tracking.tags import EPOCHS_TAG, FAMILY_TAG, HOST_TAG, NODE_TAG, RETRIES_TAG, STATUS_TAG, TRIAL_TAG

NODE_ID = "node_id"   # reported by each trial: the Ray node it runs on (Tune adds hostname and node_ip)
REPORTED = (M.TRAIN_LOSS, M.VAL_LOSS, M.VAL_ACC1, M.VAL_ACC5, M.LR, M.TRAIN_IMAGES_PER_S, M.COST_PARAMS,
            M.COST_FROZEN_PARAMS, M.COST_MACS, M.COST_LATENCY_MS_IN_TRIAL, M.EPOCHS_REACHED,
            M.TEST_LOSS, M.TEST_ACC1, M.TEST_ACC5)


class MlflowTrialLogger(Callback):
    def __init__(self, tracking_uri: str, experiment: str, parent_run_id: str, full_epochs: int):
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.parent_run_id, self.full_epochs = parent_run_id, full_epochs
        self.runs: dict[str, MlflowRun] = {}
        self._store: Store | None = None
        self.failed: dict[str, str] = {}
        self.logged: dict[str, dict[str, tuple[int, float]]] = {}   # trial -> metric -> (step, value)
        self.nodes: dict[str, str] = {}                              # trial -> node it last reported from
        self.retries: dict[str, int] = {}

    def __getstate__(self) -> dict:  # the Tuner pickles its callbacks; clients do not travel
        return {**self.__dict__, "runs": {}, "_store": None}

    @property
    def store(self) -> Store:
        # Opened once: a run opened while the server is down then waits in the store's retries
        # instead of failing the reachability check a fresh open makes.
        if getattr(self, "_store", None) is None:
            self._store = Store.open(self.tracking_uri)
        return self._store

    def _run(self, trial) -> MlflowRun:
        if trial.trial_id not in self.runs:
            self.runs[trial.trial_id] = self._open(trial)
        return self.runs[trial.trial_id]

    def _open(self, trial) -> MlflowRun:
        candidate = trial.config["candidate"]
        family = candidate["family"]
        # A trial may name its own parent and tags (`confirm`: one run per architecture, a child per seed).
        parent = trial.config.get("parent_run_id") or self.parent_run_id
        if trial.checkpoint is not None:
            # A trial of a resumed experiment that continues from its checkpoint: its epochs so far
            # are in its earlier run, so continue that run.
            earlier = self._earlier_run(trial.trial_id, parent)
            if earlier is not None:
                return earlier
        run = MlflowRun(self.tracking_uri, self.experiment,
                        run_name=trial.config.get("run_name") or f"{family}-{trial.trial_id}",
                        tags={TRIAL_TAG: trial.trial_id, FAMILY_TAG: family, STATUS_TAG: "running",
                              **trial.config.get("tags", {})},
                        parent_run_id=parent, store=self.store)
        self._delete_previous_attempts(run, trial.trial_id, parent)
        run.start()
        # A create_run retried after the server died mid-request may have been committed twice.
        self._delete_previous_attempts(run, trial.trial_id, parent, keep=run.run_id)
        params = arch_params(parse_arch(candidate["arch"]))
        params.update({f"search.{k}": v for k, v in candidate["params"].items()})
        params["family"] = family
        run.log_params(params)
        run.log_text(parse_arch(candidate["arch"]).to_yaml(), "arch.yaml")
        return run

    def _earlier_run(self, trial_id: str, parent: str) -> MlflowRun | None:
        """The trial's newest live run, reattached, with what it already logged (other attempts deleted)."""
        experiment = self.store.experiment(self.experiment)
        if experiment is None:
            return None
        runs = sorted(self.store.children(experiment.experiment_id, parent, f"tags.`{TRIAL_TAG}` = '{trial_id}'"),
                      key=lambda r: r.start_time)
        if not runs:
            return None
        for extra in runs[:-1]:
            self.store.delete_run(extra.run_id)
        run = MlflowRun.attach(self.tracking_uri, self.experiment, runs[-1].run_id, store=self.store)
        self.store.set_terminated(run.run_id, "RUNNING")   # the UI shows it training again
        self.logged[trial_id] = {key: (max(steps), float("nan")) for key in REPORTED
                                 if key in runs[-1].metrics and (steps := [s for s, _ in
                                                                           self.store.metric_history(run.run_id, key)])}
        return run

    def _delete_previous_attempts(self, run: MlflowRun, trial_id: str, parent: str, keep: str | None = None) -> None:
        experiment = run.store.experiment(self.experiment)
        if experiment is None:
            return
        for previous in run.store.children(experiment.experiment_id, parent, f"tags.`{TRIAL_TAG}` = '{trial_id}'"):
            if previous.run_id != keep:
                run.store.delete_run(previous.run_id)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        self._run(trial)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        step = int(result.get(M.EPOCHS_REACHED, result.get("training_iteration", 0)))
        seen = self.logged.setdefault(trial.trial_id, {})
        # Each metric once per step: a result at a step already logged (the final report repeats
        # the last epoch's; a trial resumed from an older checkpoint redoes an epoch) adds nothing.
        metrics = {k: float(result[k]) for k in REPORTED if k in result and (k not in seen or step > seen[k][0])}
        run = self._run(trial)
        run.log_metrics(metrics, step=step)
        seen.update({k: (step, v) for k, v in metrics.items()})
        node = result.get(NODE_ID)
        if node and self.nodes.get(trial.trial_id) != node:   # first result, or retried on another node
            self.nodes[trial.trial_id] = node
            run.set_tags({NODE_TAG: node, HOST_TAG: f"{result.get('hostname', '?')} ({result.get('node_ip', '?')})"})

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        run = self._run(trial)
        result = trial.last_result or {}
        epochs = int(result.get(M.EPOCHS_REACHED, 0))
        status = "completed" if epochs >= self.full_epochs else "stopped_early"
        run.set_tags({STATUS_TAG: status, EPOCHS_TAG: epochs})
        checkpoint = trial.checkpoint
        if checkpoint is not None:
            weights = Path(checkpoint.path) / "weights.safetensors"
            if weights.exists():
                run.log_artifact(weights)
        run.finish()
        self.runs.pop(trial.trial_id, None)
        self.logged.pop(trial.trial_id, None)
        self.nodes.pop(trial.trial_id, None)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        """A failed trial Tune will run again (e.g. its node died): same run, counted."""
        retries = max(int(getattr(trial, "num_failures", 0) or 0), self.retries.get(trial.trial_id, 0) + 1)
        self.retries[trial.trial_id] = retries
        self._run(trial).set_tags({RETRIES_TAG: retries, STATUS_TAG: "retrying"})

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        run = self._run(trial)
        message = _error_text(trial)
        self.failed[trial.trial_id] = message
        run.set_tags({STATUS_TAG: "failed"})
        run.fail(message)
        self.runs.pop(trial.trial_id, None)


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        lines = [line for line in Path(path).read_text().strip().splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return str(getattr(trial, "error_msg", None) or "unknown error")
