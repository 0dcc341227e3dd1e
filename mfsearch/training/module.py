"""LightningModule for image classification with any ``nn.Module`` (the model knows nothing about
training): label smoothing or soft targets under Mixup/CutMix, AdamW/LAMB without weight decay on
1-d parameters, per-step warmup + cosine, optional EMA, top-1/top-5 with torchmetrics.
"""
from __future__ import annotations

import math
import time

import lightning as L
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from .. import metrics as M
from .recipes import TrainConfig


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, lr: float, warmup_lr: float,
                  min_lr: float) -> float:
    """Learning rate at ``step``: linear from warmup_lr to lr, then cosine down to min_lr."""
    if step < warmup_steps:
        return warmup_lr + (lr - warmup_lr) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


class ClassificationModule(L.LightningModule):
    def __init__(self, model: nn.Module, recipe: TrainConfig, num_classes: int):
        super().__init__()
        self.model = model
        self.recipe = recipe
        self.num_classes = num_classes
        if recipe.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward_model = torch.compile(self.model) if recipe.compile else self.model
        use_mix = recipe.mixup > 0 or recipe.cutmix > 0
        self.mixup = Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix, switch_prob=recipe.mixup_switch_prob,
                           label_smoothing=recipe.label_smoothing, num_classes=num_classes) if use_mix else None
        self.soft_loss = SoftTargetCrossEntropy()
        self.ema = ModelEmaV3(self.model, decay=recipe.ema_decay) if recipe.ema else None
        if self.ema is not None:
            self.ema.requires_grad_(False)  # averaged, never optimised
        top5 = min(5, num_classes)
        self.metrics = nn.ModuleDict({
            f"{split}_{k}": MulticlassAccuracy(num_classes, top_k=top_k, average="micro")
            for split in ("val", "test") for k, top_k in (("acc1", 1), ("acc5", top5))})
        self._epoch_start = 0.0
        self._epoch_images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_model(self._prepare(x))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.recipe.channels_last else x

    # --- training -------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_start, self._epoch_images = time.perf_counter(), 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x, soft = self._mix(x, y)
        return self._logged(self._loss(self(x), y, soft), x.shape[0])

    def _mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch under Mixup/CutMix and its soft targets (None: hard labels)."""
        if self.mixup is not None and x.shape[0] % 2 == 0:  # timm's batch mixing needs an even batch
            return self.mixup(x, y)
        return x, None

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        if soft is not None:
            return self.soft_loss(logits, soft)
        return F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)

    def _logged(self, loss: torch.Tensor, images: int) -> torch.Tensor:
        """A training step's loss, checked finite and logged with the lr and the images seen."""
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss ({loss.item()}) at epoch {self.current_epoch}, "
                                     f"step {self.global_step}")
        self._epoch_images += images
        self.log(M.TRAIN_LOSS, loss, on_step=False, on_epoch=True, batch_size=images)
        self.log(M.LR, self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    def on_train_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        if elapsed > 0:
            self.log(M.TRAIN_IMAGES_PER_S, self._epoch_images / elapsed)

    def configure_optimizers(self):
        r = self.recipe
        # timm exempts every parameter with ndim <= 1 (norms, biases, scales, StarReLU s/b) from decay.
        optimizer = create_optimizer_v2(self.model, opt=r.optimizer, lr=r.lr, weight_decay=r.weight_decay,
                                        filter_bias_and_bn=True)
        total = max(1, self.trainer.estimated_stepping_batches)
        steps_per_epoch = total / max(1, r.epochs)
        warmup = int(round(r.warmup_epochs * steps_per_epoch))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total, r.lr, r.warmup_lr, r.min_lr) / r.lr)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- evaluation -----------------------------------------------------------------------
    def _eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.forward_model

    def _eval_step(self, batch, split: str) -> None:
        x, y = batch
        logits = self._eval_model()(self._prepare(x))
        loss = F.cross_entropy(logits, y)
        self.log(f"{split}/loss", loss, on_epoch=True, batch_size=x.shape[0])
        for k in ("acc1", "acc5"):
            self.metrics[f"{split}_{k}"].update(logits, y)

    def _log_accuracy(self, split: str) -> None:
        # Accuracy in percent, like the paper and timm report it.
        for k in ("acc1", "acc5"):
            metric = self.metrics[f"{split}_{k}"]
            self.log(f"{split}/{k}", metric.compute() * 100.0)
            metric.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_accuracy("val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_accuracy("test")

    def final_model(self) -> nn.Module:
        """The weights that were evaluated (EMA when enabled)."""
        return self.ema.module if self.ema is not None else self.model
