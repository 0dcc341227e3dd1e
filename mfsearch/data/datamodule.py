"""``ImageDataModule``: a ``DataConfig`` + ``AugmentConfig`` as Lightning dataloaders; ``check_data``.

Determinism: the split and the subsets follow ``DataConfig.seed``; the train batch order of epoch
``e`` is a function of (the module's ``seed``, ``e``) alone (``EpochShuffle``), so a training resumed
from a checkpoint sees the same batches as one that never stopped; a seeded generator seeds the
DataLoader workers.
The random crops, flips and erasing use torch's (RandAugment and the per-image crops: Python's)
global generators, as torchvision's and timm's transforms do, so they follow
``lightning.seed_everything`` and torch's per-worker seeding.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms as T

from ..errors import ConfigError
from .config import AugmentConfig, DataConfig
from .datasets import (ArrayBatches, ArrayImages, BatchCollate, FileImages, Splits, build_splits, dataset_stats,
                       materialize)
from .locate import CIFAR, ensure_available, resolve_data, resolve_img_size  # noqa: F401 (re-export)
from .transforms import FromArray, eval_transform, fast_eval_transforms, fast_train_transforms, train_transform

STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",),
                None: ("train", "val", "test")}


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_num_workers(dataset: Dataset, training_on_cpu: bool, cpus: int | None = None) -> int:
    """DataLoader workers for ``dataset`` when ``DataConfig.num_workers`` is None.

    Measured on 2 cores, CIFAR-10 JPEGs at 32 px, batch 128, a small convnet training on the CPU at
    ~2,450 img/s from in-memory tensors (numbers in the data layer's report):
    - ``ArrayBatches`` (decoded in memory, batched crop/flip/normalize, ~10 µs an image): 0. Inline,
      training runs at ~98% of the in-memory-tensor speed; a worker only adds pickling and
      shared-memory transfer (~13 µs an image of main-process time, as much as the work itself).
    - ``ArrayImages`` (per-image PIL work, e.g. RandAugment, ~250 µs an image): 0 when the model
      trains on the CPU — torch's intra-op threads already use every core, and a busy worker makes
      their barriers wait for a time slice (1 worker: ~1,250 img/s, inline: ~1,500 img/s) — else
      (GPU) all cores but one, at most 8, so the augmentation runs beside the GPU step.
    - ``FileImages`` (large images decoded per sample, ms each): all cores but one (at least 1,
      at most 8), the usual ImageNet setting.
    """
    cpus = cpus or available_cpus()
    if isinstance(dataset, ArrayBatches):
        return 0
    if isinstance(dataset, ArrayImages):
        return 0 if training_on_cpu or cpus < 2 else min(8, cpus - 1)
    return max(1, min(8, cpus - 1))


class EpochShuffle(Sampler[int]):
    """A random order of ``size`` indices per epoch, a function of (``seed``, epoch) only.

    Lightning calls ``set_epoch`` before each training epoch (as for a DistributedSampler); without
    it, each pass takes the next epoch. A shared generator advancing pass after pass would make
    epoch ``e``'s order depend on every earlier pass, which a resumed training has not made.
    """

    def __init__(self, size: int, seed: int, epoch: int = 0):
        self.size, self.seed, self.epoch = size, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        # SeedSequence mixes (seed, epoch) so that neighbouring seeds do not share shifted orders.
        mixed = int(np.random.SeedSequence([self.seed % 2**63, self.epoch]).generate_state(1, np.uint64)[0])
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(mixed)).tolist()
        self.epoch += 1
        return iter(order)


class ImageDataModule(L.LightningDataModule):
    """Train / val / test dataloaders of one dataset (see ``DataConfig`` and ``AugmentConfig``)."""

    def __init__(self, data: DataConfig, augment: AugmentConfig = AugmentConfig(), batch_size: int = 128,
                 seed: int = 0):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError("batch_size", f"must be a positive int, got {batch_size!r}")
        self.data = resolve_data(data)  # absolute root: trials may run in another working directory
        self.augment = augment
        self.batch_size = batch_size
        self.seed = seed
        self._splits: Splits | None = None
        self._datasets: dict[str, tuple[Dataset, Any]] = {}
        self._train_sampler: EpochShuffle | None = None
        self._train_epoch = 0  # the epoch the first train loader shuffles for (set by a resumed training)

    # ---- what the model needs to know (no decoding) ----
    @property
    def splits(self) -> Splits:
        """The listed, split and subsetted data (downloads CIFAR when missing; decodes nothing)."""
        if self._splits is None:
            self._splits = build_splits(self.data, ensure_available(self.data, download=True))
        return self._splits

    @property
    def num_classes(self) -> int:
        if self.data.dataset in CIFAR:
            return CIFAR[self.data.dataset].num_classes
        if self.data.dataset == "synthetic":
            return self.data.synthetic_classes
        return len(self.splits.class_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.splits.class_names

    @property
    def img_size(self) -> int:
        return resolve_img_size(self.data)

    @property
    def mean(self) -> tuple[float, ...]:
        return dataset_stats(self.data.dataset)[0]

    @property
    def std(self) -> tuple[float, ...]:
        return dataset_stats(self.data.dataset)[1]

    @property
    def train_size(self) -> int:
        return len(self.splits.train)

    @property
    def val_size(self) -> int:
        return len(self.splits.val)

    @property
    def test_size(self) -> int:
        return len(self.splits.test)

    # ---- Lightning hooks ----
    def prepare_data(self) -> None:
        """Download CIFAR when it is missing (Lightning calls this on one process per node)."""
        ensure_available(self.data, download=True)

    def setup(self, stage: str | None = None) -> None:
        """Decode (once) the splits ``stage`` needs: fit -> train+val, validate -> val, test -> test."""
        for name in STAGE_SPLITS.get(stage, STAGE_SPLITS[None]):
            self.dataset(name)

    def state_dict(self) -> dict[str, Any]:
        """Saved in training checkpoints: the epoch the train order continues at. Lightning builds a
        resumed training's loader, and its workers start prefetching, before it calls ``set_epoch``."""
        return {"train_epoch": self._train_sampler.epoch} if self._train_sampler is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._train_epoch = int(state_dict.get("train_epoch", 0))

    def check_batch_size(self) -> None:
        """Refuse a batch larger than the train split (listing only: callable before any decoding)."""
        if self.train_size < self.batch_size:
            raise ConfigError("batch_size", f"{self.batch_size} is more than the {self.train_size} train images "
                                            f"(the last partial batch is dropped, so no batch would remain)")

    def train_dataloader(self) -> DataLoader:
        self.check_batch_size()
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_size == 0:
            return []  # val_fraction 0: Lightning skips validation
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # ---- building blocks ----
    def dataset(self, name: str) -> Dataset:
        """The torch dataset of split ``name`` (train, val or test), decoding it on first use."""
        return self._get(name)[0]

    def num_workers(self, name: str = "train") -> int:
        """DataLoader workers of split ``name``: ``DataConfig.num_workers``, else ``auto_num_workers``."""
        if self.data.num_workers is not None:
            return self.data.num_workers
        return auto_num_workers(self.dataset(name), self.training_on_cpu())

    def training_on_cpu(self) -> bool:
        """Whether the model steps on the CPU: the attached Trainer's accelerator, else no GPU here."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            from lightning.pytorch.accelerators import CPUAccelerator
            return isinstance(trainer.accelerator, CPUAccelerator)
        return not torch.cuda.is_available()

    def _get(self, name: str) -> tuple[Dataset, Any]:
        if name not in self._datasets:
            self._datasets[name] = self._build(name)
        return self._datasets[name]

    def _build(self, name: str) -> tuple[Dataset, Any]:
        """(dataset, collate_fn) of split ``name``: the fastest form of the configured transform."""
        splits = self.splits
        split = splits.split(name)
        args = (self.augment, self.img_size, splits.mean, splits.std)
        train = name == "train"
        images = materialize(split, splits.stored_size)
        if images is None:  # large images: decode and transform per sample, in workers
            assert split.files is not None
            transform = train_transform(*args, None) if train else eval_transform(*args)
            return FileImages(split.files, split.targets, transform), None
        fast = (fast_train_transforms if train else fast_eval_transforms)(*args, splits.stored_size)
        if fast is not None:
            per_image, batch = fast
            if per_image is None:
                return ArrayBatches(images, split.targets), BatchCollate(batch)
            return ArrayImages(images, split.targets, per_image), BatchCollate(batch)
        # In memory but needing PIL resizing (stored size != img_size, or crop_pct < 1).
        pil = train_transform(*args, splits.stored_size) if train else eval_transform(*args)
        return ArrayImages(images, split.targets, T.Compose([FromArray(), pil])), None

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        dataset, collate = self._get(name)
        workers = self.num_workers(name)
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if shuffle:
            sampler = self._train_sampler = EpochShuffle(len(dataset), self.seed, self._train_epoch)
        return DataLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, drop_last=shuffle, generator=generator,
            num_workers=workers, persistent_workers=workers > 0, collate_fn=collate,
            pin_memory=not self.training_on_cpu())


def check_data(data: DataConfig, download: bool = True) -> None:
    """Check that ``data`` can be loaded, before any training: root and layout, class folders (at
    least two), subset sizes, and that every image file the splits use decodes (``verify.py``:
    cached; a few bad files are skipped with a warning, more than 1% are refused).

    Downloads CIFAR when it is missing and ``download`` is on (offline, that fails fast with the
    error below). Raises ``MfsearchError`` (``ConfigError`` for subset sizes) with one clear line.
    """
    data = resolve_data(data)
    build_splits(data, ensure_available(data, download=download))
