"""Resumable training: the whole training state in one Lightning checkpoint, rewritten every epoch.

A checkpoint (``trainer.save_checkpoint``) holds the module's state_dict (model and EMA weights),
the optimizer and LR-scheduler states, the loops' progress (epoch, global step), the AMP scaler,
each callback's ``state_dict`` (``EpochReporter``'s per-epoch history, ``RngState``'s random
generators) and the data module's: the epoch its train order continues at (the order of epoch e is
a function of (seed, e) alone: ``mfsearch.data.datamodule.EpochShuffle``). So a training resumed
from epoch k's checkpoint runs epochs k+1... exactly as one that never stopped (on CPU, without
DataLoader workers; see ``RngState`` for the limits).

Checkpoints are loaded with ``weights_only=True`` (torch's restricted unpickler: tensors and plain
containers, no code): a sweep's checkpoints may sit on shared storage. Everything saved here is
therefore tensors, numbers, strings, lists, tuples and dicts (numpy's RNG state is converted).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

CHECKPOINT_NAME = "last.ckpt"


def rng_state() -> dict[str, Any]:
    """The global generators training draws from: torch (dropout, drop path, crops and flips),
    numpy (Mixup/CutMix), Python (RandAugment, per-image crops) and, on a GPU, CUDA's."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    # random.setstate wants tuples; a checkpoint round trip may hand lists back.
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class RngState(L.Callback):
    """Saves the global RNG states with each checkpoint and puts them back when training resumes.

    Saved at the end of epoch k (the checkpoint is written there), restored at the start of epoch
    k+1: nothing draws random numbers in between, so the resumed epoch starts from the same states.

    Limit: DataLoader worker processes (``num_workers`` > 0, used for image files and for
    augmentation beside a GPU) keep their own generators across epochs (persistent workers); a
    resumed training reseeds them, so its augmentations differ from an uninterrupted run's (the data
    order does not). In-memory CIFAR-sized data on the CPU uses no workers and resumes exactly. On
    a GPU, exactness is not promised in the first place: training uses deterministic kernels only
    where they exist (``deterministic="warn"``).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores callbacks before it builds the dataloaders and the optimizer; applying
        # the states now would let that setup draw from them. Wait for the epoch to start.
        self._pending = state_dict["rng"]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None


def save_atomically(trainer: L.Trainer, path: Path) -> None:
    """Write the checkpoint beside ``path``, flush it to disk, then rename it over ``path``: a
    process killed mid-write leaves the previous epoch's checkpoint whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    trainer.save_checkpoint(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
