"""One training run: validate inputs, build data and model, fit, test, log to MLflow.

This is the library function behind ``mfsearch train`` and each trial of a search. Everything
that can be checked is checked before an MLflow run exists, so bad input leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import lightning as L
import torch

from .. import metrics as M
from ..api import ArchLike, resolve_arch
from ..config import ArchConfig
from ..cost import ModelCost, count_config
from ..data import DataConfig, ImageDataModule, check_data
from ..interop import save_weights
from ..memory import check_training_fits
from ..model import MetaFormer
from ..tracking import MlflowRun, arch_params, flatten
from .callbacks import EpochReporter, MetricSink
from .checkpoint import CHECKPOINT_NAME, RngState, save_atomically
from .module import ClassificationModule
from .recipes import TrainConfig


@dataclasses.dataclass
class TrainResult:
    arch: ArchConfig
    metrics: dict[str, float]            # last epoch's metrics plus test/* and cost/*
    history: list[dict[str, float]]      # one row per epoch
    run_id: str | None
    model: torch.nn.Module


def prepare(arch: ArchLike, data: DataConfig, recipe: TrainConfig) -> tuple[ArchConfig, ImageDataModule]:
    """Validate everything and build the data module; raises MfsearchError/ConfigError early.

    Checks, in order: the data (layout, classes, subsets, every image decodes), the batch size
    against the train split, the architecture at the data's image size and class count (an image
    too small for its downsampling is refused here), and that training can fit in memory
    (``memory.py``). All of it before ``train`` creates an MLflow run.
    """
    check_data(data)
    datamodule = ImageDataModule(data, recipe.augment, batch_size=recipe.batch_size, seed=data.seed)
    datamodule.check_batch_size()
    overrides: dict[str, Any] = {"num_classes": datamodule.num_classes, "img_size": datamodule.img_size}
    if recipe.drop_path_rate is not None:
        overrides["drop_path_rate"] = recipe.drop_path_rate
    if recipe.head_dropout is not None:
        overrides["head.dropout"] = recipe.head_dropout
    cfg = resolve_arch(arch, **overrides)
    check_training_fits(cfg, recipe.batch_size, recipe.precision, recipe.ema)
    return cfg, datamodule


def train(arch: ArchLike, data: DataConfig, recipe: TrainConfig, *, tracking_uri: str | None = None,
          experiment: str = "mfsearch-train", run_name: str | None = None, tags: Mapping[str, str] | None = None,
          parent_run_id: str | None = None, log_to_mlflow: bool = True, sinks: Iterable[MetricSink] = (),
          progress: bool = True, extra_params: Mapping[str, Any] | None = None, run_test: bool = True,
          threads: int | None = None, checkpoint_dir: str | Path | None = None,
          resume_from: str | Path | None = None, resume_run_id: str | None = None,
          cost: ModelCost | None = None) -> TrainResult:
    """Train ``arch`` on ``data`` with ``recipe``; validate each epoch, test once at the end.

    ``sinks`` receive each epoch's metrics (Ray Tune reporting uses this). ``log_to_mlflow=False``
    leaves tracking to the caller (a sweep logs from its driver). ``run_test=False`` skips the
    test split (a search must select on validation data only).

    Resumable (``checkpoint.py``): with ``checkpoint_dir``, the whole training state is rewritten
    every epoch, before the sinks hear of that epoch: to ``<checkpoint_dir>/last.ckpt``, or, when
    logging to MLflow, to ``<checkpoint_dir>/<run id>/last.ckpt`` (``resume.py``: tagged on the run,
    removed once it finished). ``resume_from`` continues from such a checkpoint, written by a
    training of the same arch, data and recipe: only the epochs after it are trained and reported.
    ``resume_run_id`` continues that MLflow run (its checkpoint is ``resume_from``) instead of
    starting one.
    """
    from . import resume as R

    cfg, datamodule = prepare(arch, data, recipe)
    cost = cost or count_config(cfg)   # a sweep's trial passes the one it already counted
    cost_metrics = {M.COST_PARAMS: cost.params, M.COST_FROZEN_PARAMS: cost.frozen_params, M.COST_MACS: cost.macs}

    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    model = MetaFormer(cfg)
    module = ClassificationModule(model, recipe, datamodule.num_classes)

    if progress:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        resuming = f", resuming from {resume_from}" if resume_from else ""
        print(f"training {cost.params / 1e6:.2f}M params, {cost.macs / 1e6:.1f}M MACs at {cfg.img_size} px on "
              f"{datamodule.train_size} train / {datamodule.val_size} val images ({data.dataset}), "
              f"{recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.precision} on {device}{resuming}",
              flush=True)
    state = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    with contextlib.ExitStack() as held:
        run = None
        if log_to_mlflow and resume_run_id:
            # Locked before the run is touched: a live process still training it must keep it as it is.
            held.enter_context(R.locked(Path(resume_from).parent, resume_run_id))
            run = MlflowRun.attach(tracking_uri, experiment, resume_run_id)
        elif log_to_mlflow:
            run = MlflowRun(tracking_uri, experiment, run_name, tags, parent_run_id).start()
        try:
            if run is not None and resume_run_id:
                R.reopen(run, Path(resume_from))
                state = Path(resume_from)  # where the run's tag points: keep rewriting it there
            elif run is not None:
                run.log_params({**arch_params(cfg), **flatten("data", dataclasses.asdict(data)),
                                **flatten("train", recipe.to_dict()), **(extra_params or {})})
                run.log_metrics(cost_metrics, step=0)
                run.log_text(cfg.to_yaml(), "arch.yaml")
                if checkpoint_dir is not None:
                    state = Path(checkpoint_dir).resolve() / run.run_id / CHECKPOINT_NAME
                    R.start_folder(held, run, state.parent, cfg, datamodule.data, recipe, experiment, run_test)
            mlflow_sink = [lambda metrics, epoch, _model: run.log_metrics(metrics, step=epoch)] if run else []
            save = (lambda trainer: save_atomically(trainer, state)) if state is not None else None
            reporter = EpochReporter(*mlflow_sink, *sinks, checkpoint=save)
            trainer = _trainer(recipe, [RngState(), reporter], progress)
            # weights_only: torch's restricted unpickler (no code runs), as a checkpoint may come
            # from shared storage; checkpoint.py keeps its contents to tensors and plain values.
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            test = trainer.test(module, datamodule=datamodule, verbose=False)[0] if run_test else {}
            final = {**(reporter.history[-1] if reporter.history else {}),
                     **{k: float(v) for k, v in test.items() if k.startswith("test/")}, **cost_metrics}
            if run is not None:
                run.log_metrics({k: v for k, v in final.items() if k.startswith("test/")}, step=recipe.epochs)
                with tempfile.TemporaryDirectory() as tmp:
                    weights = Path(tmp) / "weights.safetensors"
                    save_weights(module.final_model(), weights)
                    run.log_artifact(weights)
                run.finish()
                if state is not None:
                    R.remove(state.parent)  # a finished run is not resumed; its weights are in MLflow
            return TrainResult(cfg, final, reporter.history, run.run_id if run else None, module.final_model())
        except BaseException as err:
            if run is not None:
                run.fail(err)
            raise


def _trainer(recipe: TrainConfig, callbacks: list, progress: bool) -> L.Trainer:
    # Lightning's tips and hints about workers/logging on small CPU runs are noise for our users;
    # `train` prints its own one-line summary instead.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*LightningModule.log.*", ".*LeafSpec.*is deprecated.*",
                    ".*module\\(s\\) in eval mode.*"):  # the EMA copy stays in eval mode by design
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    return L.Trainer(
        max_epochs=recipe.epochs, accelerator="auto", devices=1, precision=recipe.precision,
        gradient_clip_val=recipe.grad_clip, accumulate_grad_batches=recipe.accumulate_grad_batches,
        logger=False, enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        enable_progress_bar=progress, callbacks=callbacks,
        deterministic=True if not torch.cuda.is_available() else "warn")
