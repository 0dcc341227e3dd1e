"""Where a ``mfsearch train`` logged to MLflow keeps its training state, and ``--resume RUN_ID``.

Each run gets a local folder ``<checkpoint dir>/<run id>/`` (default ``./mfsearch_checkpoints``)
holding ``last.ckpt`` (the whole training state, rewritten atomically every epoch), ``run.json``
(the resolved arch, data and recipe: what ``--resume`` trains with) and ``lock``. The run's
``mfsearch.checkpoint`` tag names the checkpoint's absolute path; that is how ``--resume`` finds it.

Why a local folder and not an MLflow artifact: the state is about 4x the weights (AdamW's two
moments, the EMA copy), i.e. ~1.6 GB per epoch for a 100M-parameter model; uploading that to a
tracking server every epoch would cost more than many epochs do, and MLflow artifacts cannot be
replaced atomically. A local (or shared) disk covers the common loss, a killed or preempted process;
point ``--checkpoint-dir`` at shared storage to survive losing the machine. The folder is removed
once the run finished (a finished run cannot be resumed, and the weights are in MLflow).

``lock`` is held (``flock``) for as long as a process trains the run: a run still RUNNING in MLflow
may be a killed process's or a live one's, and only a live one holds the lock.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch

from .. import metrics as M
from ..errors import MfsearchError
from ..tracking.tags import CHECKPOINT_TAG, RESUMED_TAG
from .checkpoint import CHECKPOINT_NAME

RUN_FILE = "run.json"
LOCK_FILE = "lock"


@contextlib.contextmanager
def locked(folder: Path, run_id: str) -> Iterator[None]:
    """Hold ``folder``'s lock; refuse with one line when another live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MfsearchError(f"run {run_id} is being trained by another live process (it holds "
                            f"{folder / LOCK_FILE}); wait for it or stop it first") from None
    try:
        yield
    finally:
        os.close(fd)  # also released by the kernel when the process dies, however it dies


def start_folder(held: contextlib.ExitStack, run, folder: Path, cfg, data, recipe, experiment: str,
                 run_test: bool) -> None:
    """Make a new run's folder: locked for the training's lifetime, its settings written, and the
    run tagged with where its checkpoint will be."""
    from ..schema import to_plain
    held.enter_context(locked(folder, run.run_id))
    raw = {"arch": cfg.to_dict(), "data": to_plain(data), "recipe": recipe.to_dict(), "experiment": experiment,
           "run_test": run_test}
    tmp = folder / (RUN_FILE + ".partial")
    tmp.write_text(json.dumps(raw, indent=1))
    os.replace(tmp, folder / RUN_FILE)
    run.set_tags({CHECKPOINT_TAG: str(folder / CHECKPOINT_NAME)})


def checkpoint_history(path: Path) -> list[dict[str, float]]:
    """The per-epoch rows a checkpoint holds (``EpochReporter``'s state), read without loading its
    tensors (``mmap``): the backfill below needs them before the training restores them."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    for key, value in state.get("callbacks", {}).items():
        if key.split("{")[0] == "EpochReporter":
            return list(value["history"])
    return []


def backfill(run, path: Path) -> int:
    """Log the epochs the checkpoint holds that the run lacks; returns the checkpoint's epoch.

    A training writes epoch k's checkpoint before it logs epoch k (so a checkpointed epoch is never
    trained twice); a process killed between the two leaves the checkpoint one epoch ahead of MLflow.
    """
    history = checkpoint_history(path)
    logged = {step for step, _ in run.store.metric_history(run.run_id, M.EPOCH)}
    for row in history:
        if int(row[M.EPOCH]) not in logged:
            run.log_metrics(row, step=int(row[M.EPOCH]))
    return int(history[-1][M.EPOCH]) if history else 0


def reopen(run, checkpoint: Path) -> None:
    """Make a killed or failed run, about to continue from ``checkpoint``, whole and RUNNING again."""
    epoch = backfill(run, checkpoint)
    run.store.set_terminated(run.run_id, "RUNNING")  # the UI shows it training again
    run.set_tags({RESUMED_TAG: epoch})


def remove(folder: Path) -> None:
    """Remove a finished run's folder, and the checkpoint dir too once no run is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """What ``train`` needs to continue run ``run_id``: its checkpoint and its settings."""
    run_id: str
    tracking_uri: str
    experiment: str
    checkpoint: Path
    arch: Any
    data: Any
    recipe: Any
    run_test: bool


def find(run_id: str, tracking_uri: str | None) -> ResumePoint:
    """The resume point of MLflow run ``run_id``; one clear line when it cannot be resumed."""
    from ..config import parse_arch
    from ..data import DataConfig
    from ..schema import parse_dataclass
    from ..tracking import Store
    from .recipes import TrainConfig

    store = Store.open(tracking_uri, must_exist=True)
    run = store.run(run_id)
    if run is None:
        raise MfsearchError(f"--resume: no run {run_id} in {store.uri}")
    if run.status == "FINISHED":
        raise MfsearchError(f"--resume: run {run_id} already finished; nothing to resume")
    where = run.tags.get(CHECKPOINT_TAG)
    if not where:
        raise MfsearchError(f"--resume: run {run_id} has no training checkpoint (it was not started by "
                            f"`mfsearch train` with checkpoints)")
    checkpoint = Path(where)
    if not checkpoint.is_file() or not (checkpoint.parent / RUN_FILE).is_file():
        reason = "no epoch finished before it stopped" if checkpoint.parent.is_dir() else "its folder is gone"
        raise MfsearchError(f"--resume: run {run_id}'s checkpoint {checkpoint} is missing ({reason})")
    with locked(checkpoint.parent, run_id):  # refused here, before any data is read; `train` locks for good
        pass
    raw = json.loads((checkpoint.parent / RUN_FILE).read_text())
    return ResumePoint(run_id, store.uri, store.experiment_by_id(run.experiment_id).name, checkpoint,
                       parse_arch(raw["arch"]), parse_dataclass(DataConfig, raw["data"], "data"),
                       parse_dataclass(TrainConfig, raw["recipe"], ""), bool(raw["run_test"]))


def resume(run_id: str, tracking_uri: str | None = None, progress: bool = True):
    """Continue the killed ``mfsearch train`` run ``run_id`` from its last checkpoint, in the same
    MLflow run (later epochs appended, FINISHED at the end). Returns a ``TrainResult``."""
    from .run import train

    point = find(run_id, tracking_uri)
    return train(point.arch, point.data, point.recipe, tracking_uri=point.tracking_uri,
                 experiment=point.experiment, progress=progress, run_test=point.run_test,
                 resume_from=point.checkpoint, resume_run_id=point.run_id)


__all__ = ["CHECKPOINT_NAME", "CHECKPOINT_TAG", "ResumePoint", "find", "resume"]
