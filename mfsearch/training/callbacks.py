"""Lightning callbacks: per-epoch metric reporting to any sink (MLflow, Ray Tune) and throughput."""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import lightning as L
import torch

from .. import metrics as M

# (metrics, epoch, model) -> None; ``model`` holds the weights being evaluated (EMA when enabled).
MetricSink = Callable[[Mapping[str, float], int, "torch.nn.Module"], None]

# What gets reported each epoch, when logged.
EPOCH_METRICS = (M.TRAIN_LOSS, M.VAL_LOSS, M.VAL_ACC1, M.VAL_ACC5, M.LR)


class EpochReporter(L.Callback):
    """After each training epoch (validation included), send the epoch's metrics to the sinks.

    Also measures ``train/images_per_s``: training images over the time from the first to the
    last training batch of the epoch, data loading included and validation excluded.

    ``checkpoint(trainer)``, when given, runs after the epoch's row is recorded and before any sink
    sees it, so a sink that reports "epoch k is done" (Ray Tune) can ship epoch k's checkpoint, and
    a run killed in between resumes from epoch k without reporting it twice. The history travels
    in the checkpoint (``state_dict``), so a resumed training reports only its new epochs.
    """

    def __init__(self, *sinks: MetricSink, checkpoint: Callable[[L.Trainer], None] | None = None):
        self.sinks = list(sinks)
        self.checkpoint = checkpoint
        self.history: list[dict[str, float]] = []
        self._start = self._last = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._images += len(batch[1])
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logged = trainer.callback_metrics
        row = {k: float(logged[k]) for k in EPOCH_METRICS if k in logged}
        if self._last > self._start:
            row[M.TRAIN_IMAGES_PER_S] = self._images / (self._last - self._start)
        row[M.EPOCH] = trainer.current_epoch + 1
        self.history.append(row)
        if self.checkpoint is not None:
            self.checkpoint(trainer)
        for sink in self.sinks:
            sink(row, trainer.current_epoch + 1, pl_module.final_model())

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(row) for row in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(row) for row in state_dict["history"]]
