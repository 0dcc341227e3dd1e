"""Typed config of the data a model trains on, and of its augmentation (part of a recipe)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from ..schema import non_negative, positive, probability

DATASETS = ("cifar10", "cifar100", "imagefolder", "synthetic")


def _fraction(value: float) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def _at_least_two(value: int) -> str | None:
    return None if value >= 2 else "must be at least 2 (a classifier needs at least two classes)"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: Literal["cifar10", "cifar100", "imagefolder", "synthetic"] = "cifar10"
    # Dataset root. Default: $MFSEARCH_DATA_DIR/<dataset>, else ~/.cache/mfsearch/data/<dataset>.
    # cifar10/cifar100: torchvision's format (downloaded there when online) or an ImageFolder tree
    # with train/ and test/. imagefolder: train/ plus val/ or test/, one folder per class (two or
    # more). Images that do not decode are skipped with a warning, or refused above 1% (verify.py).
    root: str | None = None
    # Side of the square images fed to the model. Default: 32 for CIFAR/synthetic, 224 otherwise.
    img_size: int | None = dataclasses.field(default=None, metadata={"check": positive})
    # Deterministic, class-balanced subsets (number of images), drawn after the validation split.
    train_subset: int | None = dataclasses.field(default=None, metadata={"check": positive})
    val_subset: int | None = dataclasses.field(default=None, metadata={"check": positive})
    test_subset: int | None = dataclasses.field(default=None, metadata={"check": positive})
    # Share of the train split held out (class-balanced) as validation data; the test split is
    # only used for the final evaluation. 0: no validation split.
    val_fraction: float = dataclasses.field(default=0.1, metadata={"check": _fraction})
    # Train on the train and validation images together (exactly the images the two splits hold
    # after the subsets are drawn) and validate on nothing: the final training of a chosen
    # architecture, evaluated on test (`mfsearch retrain --full-train`).
    train_on_val: bool = False
    # Synthetic data only: images in the train split and number of classes.
    synthetic_size: int = dataclasses.field(default=2000, metadata={"check": positive})
    synthetic_classes: int = dataclasses.field(default=10, metadata={"check": _at_least_two})
    num_workers: int | None = dataclasses.field(default=None, metadata={"check": non_negative})  # None: auto
    seed: int = 0  # for the split and the subsets (not the training seed)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation, through timm's ``create_transform`` (eval: resize + center crop)."""

    # timm RandAugment string, e.g. "rand-m9-mstd0.5-inc1"; null: off.
    rand_augment: str | None = None
    # Random erasing probability (mode "pixel").
    random_erasing: float = dataclasses.field(default=0.0, metadata={"check": probability})
    color_jitter: float | None = dataclasses.field(default=None, metadata={"check": non_negative})
    hflip: float = dataclasses.field(default=0.5, metadata={"check": probability})
    # Images of at most this many px get pad-and-random-crop (CIFAR style) instead of
    # RandomResizedCrop with ``scale``.
    small_image_max: int = 64
    crop_padding: int = dataclasses.field(default=4, metadata={"check": non_negative})
    scale: tuple[float, float] = (0.08, 1.0)
    interpolation: Literal["bilinear", "bicubic", "random"] = "bicubic"
    crop_pct: float = dataclasses.field(default=1.0, metadata={"check": positive})  # eval center crop
