"""One trial of a sweep, run by Ray Tune in a worker process: train a candidate and report.

Each epoch's metrics go to Tune with a checkpoint holding the weights and the resolved arch YAML
(so even trials a scheduler stops early keep their last weights; the driver logs to MLflow and
uploads the weights) and ``training.ckpt``, the whole training state (``training/checkpoint.py``).
A trial Tune retries (``FailureConfig.max_failures``) or resumes (``Tuner.restore``) continues from
its last checkpoint: it trains and reports only the epochs after it, so ``epochs_reached`` keeps
increasing and an epoch reported once is never reported again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .. import metrics as M

# Trials run in worker processes that import this module fresh; keep imports light at the top.

TRAINING_STATE = "training.ckpt"   # in each Tune checkpoint, beside weights.safetensors and arch.yaml


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep runs, resolved and validated once by the driver."""

    data: Any        # mfsearch.data.DataConfig, its root absolute (trials run in their own folders)
    recipe: Any      # mfsearch.training.recipes.TrainConfig
    threads: int     # torch threads: the CPUs the trial holds


def run_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    from ray import tune

    from ..api import resolve_arch
    from ..interop import save_weights
    from ..latency import LatencyProtocol, measure_arch
    from ..training.checkpoint import CHECKPOINT_NAME
    from ..training.run import train

    os.environ.setdefault("PL_DISABLE_FORK", "1")
    threads = plan.threads
    torch.set_num_threads(threads)
    recipe = plan.recipe
    if config.get("seed") is not None:  # `confirm`: every architecture trained with the same seeds
        recipe = dataclasses.replace(recipe, seed=int(config["seed"]))
    candidate = config["candidate"]
    cfg = resolve_arch(candidate["arch"])
    # An estimate for schedulers and searchers that rank on latency during the sweep: measured here,
    # while other trials share the cores, hence its own name. The comparable `cost/latency_ms` is
    # measured by the driver, every finished trial serially after the trainings (mfsearch.latency).
    latency = measure_arch(cfg, LatencyProtocol()).median_ms
    import ray
    where = {"node_id": ray.get_runtime_context().get_node_id()}   # the driver tags the run with it

    # Tune's last checkpoint of this trial when it is retried or its experiment resumed; one from
    # before checkpoints held the training state restarts the trial from epoch 0.
    restored = tune.get_checkpoint()
    with contextlib.ExitStack() as held:
        state_dir = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="mfsearch-trial-")))
        resume_from = None
        if restored is not None:
            candidate_state = Path(held.enter_context(restored.as_directory())) / TRAINING_STATE
            resume_from = candidate_state if candidate_state.is_file() else None

        def report(metrics: dict, epoch: int, model: torch.nn.Module) -> None:
            loss = metrics.get(M.TRAIN_LOSS)
            if loss is not None and not math.isfinite(loss):
                raise FloatingPointError(f"train/loss is {loss} at epoch {epoch}")
            with tempfile.TemporaryDirectory() as tmp:
                save_weights(model, Path(tmp) / "weights.safetensors")
                (Path(tmp) / "arch.yaml").write_text(cfg.to_yaml())
                # `train` wrote this epoch's state just before calling the sinks; a hard link costs no
                # copy (the next epoch replaces the file by a rename, leaving this one whole).
                _link_or_copy(state_dir / CHECKPOINT_NAME, Path(tmp) / TRAINING_STATE)
                tune.report({**metrics, **cost, M.COST_LATENCY_MS_IN_TRIAL: latency, "epochs_reached": epoch,
                             **where}, checkpoint=tune.Checkpoint.from_directory(tmp))

        from ..cost import count_config
        c = count_config(cfg)
        cost = {M.COST_PARAMS: c.params, M.COST_FROZEN_PARAMS: c.frozen_params, M.COST_MACS: c.macs}
        run_test = bool(config.get("run_test", False))
        result = train(cfg, plan.data, recipe, log_to_mlflow=False, cost=c, sinks=[report], progress=False,
                       run_test=run_test, threads=threads, checkpoint_dir=state_dir, resume_from=resume_from)
    if run_test:  # reported after selection is done, never used to select (`confirm` only)
        tune.report({**result.metrics, M.COST_LATENCY_MS_IN_TRIAL: latency, "epochs_reached": recipe.epochs})


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another file system, or one without hard links
        import shutil
        shutil.copyfile(source, dest)
