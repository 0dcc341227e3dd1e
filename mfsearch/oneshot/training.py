"""Supernet training with the project's LightningModule, recipe and checkpoints.

``SupernetModule`` is ``ClassificationModule`` (same loss, Mixup, optimizer groups, warmup-cosine,
throughput) with two changes: each training step trains the paths of the ``PathSampler`` (their
losses averaged: one backward, so the step costs k forwards and keeps k graphs), and validation
scores fixed probe members (the baselines' mixer patterns) with inherited weights, so ``val/acc1``
is comparable from epoch to epoch. The sampler's state travels in the checkpoint.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F

from .. import metrics as M
from ..config import ArchConfig
from ..data import DataConfig, ImageDataModule, check_data
from ..errors import ConfigError
from ..memory import check_training_fits
from ..training.callbacks import EpochReporter, MetricSink
from ..training.checkpoint import CHECKPOINT_NAME, RngState, save_atomically
from ..training.module import ClassificationModule
from ..training.recipes import TrainConfig
from .sampling import PathSampler
from .supernet import SuperNet

SAMPLER_KEY = "mfsearch_path_sampler"


class SupernetModule(ClassificationModule):
    def __init__(self, supernet: SuperNet, recipe: TrainConfig, num_classes: int, sampler: PathSampler,
                 probes: dict[str, ArchConfig]):
        if recipe.ema or recipe.compile:
            raise ConfigError("train.overrides", "one-shot supernet training supports neither ema nor compile "
                                                 "(an EMA copy or a compiled graph would hold one path)")
        super().__init__(supernet, recipe, num_classes)
        self.sampler = sampler
        self.probes = dict(probes) or {"largest": supernet.largest(0)}
        self._probe_correct = torch.zeros(len(self.probes), dtype=torch.long)
        self._probe_loss = torch.zeros(len(self.probes), dtype=torch.double)
        self._probe_seen = 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x, soft = self._mix(x, y)          # one mixed batch for all of the step's paths
        paths = self.sampler.step()
        loss = 0.0
        for cfg in paths:
            self.model.active = cfg
            loss = loss + self._loss(self(x), y, soft) / len(paths)
        return self._logged(loss, x.shape[0])

    # --- validation: every probe member on the same images ------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._probe_correct.zero_()
        self._probe_loss.zero_()
        self._probe_seen = 0

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        x = self._prepare(x)
        for i, cfg in enumerate(self.probes.values()):
            logits = self.model.run(x, cfg)
            self._probe_correct[i] += int((logits.argmax(1) == y).sum())
            self._probe_loss[i] += float(F.cross_entropy(logits, y, reduction="sum"))
        self._probe_seen += int(y.shape[0])

    def on_validation_epoch_end(self) -> None:
        seen = max(1, self._probe_seen)
        acc = self._probe_correct.double() * 100.0 / seen
        self.log(M.VAL_ACC1, float(acc.mean()))
        self.log(M.VAL_LOSS, float(self._probe_loss.mean() / seen))

    def probe_accuracies(self) -> dict[str, float]:
        seen = max(1, self._probe_seen)
        return {name: float(c) * 100.0 / seen for name, c in zip(self.probes, self._probe_correct)}

    # --- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[SAMPLER_KEY] = self.sampler.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if SAMPLER_KEY in checkpoint:
            self.sampler.load_state_dict(checkpoint[SAMPLER_KEY])

    def final_model(self) -> SuperNet:
        return self.model


@dataclasses.dataclass
class SupernetTraining:
    module: SupernetModule
    datamodule: ImageDataModule
    history: list[dict[str, float]]


def train_supernet(supernet: SuperNet, sampler: PathSampler, probes: dict[str, ArchConfig], data: DataConfig,
                   recipe: TrainConfig, *, sinks: Iterable[MetricSink] = (), checkpoint_dir: str | Path | None = None,
                   resume_from: str | Path | None = None, threads: int | None = None,
                   progress: bool = False, callbacks: Iterable = ()) -> SupernetTraining:
    """Train ``supernet`` for ``recipe.epochs``; the whole state goes to ``checkpoint_dir/last.ckpt``
    every epoch before the sinks hear of it, and ``resume_from`` continues such a checkpoint."""
    import lightning as L

    from ..training.run import _trainer

    check_data(data)
    datamodule = ImageDataModule(data, recipe.augment, batch_size=recipe.batch_size, seed=data.seed)
    datamodule.check_batch_size()
    # State: every weight of the supernet (all mixers' included) with its gradients and AdamW moments;
    # activations: the largest member's, times the k paths whose graphs a step keeps.
    weights = (sum(p.numel() for p in supernet.parameters() if p.requires_grad),
               sum(p.numel() for p in supernet.parameters() if not p.requires_grad))
    check_training_fits(supernet.largest(0), recipe.batch_size * max(1, sampler.paths_per_step), recipe.precision,
                        False, weights=weights)
    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    module = SupernetModule(supernet, recipe, datamodule.num_classes, sampler, probes)
    state = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    save = (lambda trainer: save_atomically(trainer, state)) if state is not None else None
    reporter = EpochReporter(*sinks, checkpoint=save)
    trainer = _trainer(recipe, [RngState(), reporter, *callbacks], progress)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    return SupernetTraining(module, datamodule, reporter.history)
