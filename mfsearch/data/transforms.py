"""Train and eval transforms from an ``AugmentConfig``, built with timm's ``create_transform``.

Three forms, the same augmentation:

- large images (``img_size > small_image_max``): timm's ImageNet recipe as is (RandomResizedCrop
  with ``scale``, flip, RandAugment or colour jitter, normalize, random erasing);
- small images: timm's create_transform has no CIFAR-style mode and RandomResizedCrop with
  scale (0.08, 1) destroys a 32-px image, so the geometric part is pad-and-random-crop plus flip
  (torchvision), followed by timm's own secondary (RandAugment / colour jitter) and final
  (ToTensor, Normalize, RandomErasing) stages, taken from ``create_transform(separate=True)`` so
  that timm's parameters (RandAugment's translate and fill, timm's rules for when colour jitter is
  off) stay timm's;
- the fast form of the small recipe, for images already decoded in memory at the model's size:
  ``BatchTransform`` does pad-crop + flip (when nothing else needs PIL), ToTensor, Normalize and
  random erasing on a whole uint8 batch at once; ``SmallAugment`` does the per-image part when the
  recipe has PIL-only ops (RandAugment, colour jitter). Why: torchvision's per-image PIL crop, flip,
  ToTensor and Normalize cost ~230 µs per 32-px image, as much as a small model's training step on
  2 cores; the batched form costs ~10 µs (measured; see ``datamodule.auto_num_workers``).
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from .config import AugmentConfig

PilTransform = Callable  # PIL.Image -> normalized float CHW tensor


def _interp(augment: AugmentConfig) -> str:
    # "random" (bilinear or bicubic per image) exists for RandomResizedCrop only.
    return "bicubic" if augment.interpolation == "random" else augment.interpolation


def is_small(augment: AugmentConfig, img_size: int) -> bool:
    return img_size <= augment.small_image_max


def _timm_train(augment: AugmentConfig, img_size: int, mean: Sequence[float], std: Sequence[float],
                separate: bool):
    from timm.data import create_transform
    return create_transform(
        input_size=img_size, is_training=True, scale=tuple(augment.scale), hflip=augment.hflip,
        # timm's default jitter is 0.4; ours is off unless asked for (None: timm adds no ColorJitter).
        color_jitter=augment.color_jitter or None,
        auto_augment=augment.rand_augment, interpolation=augment.interpolation,
        mean=tuple(mean), std=tuple(std), re_prob=augment.random_erasing, re_mode="pixel",
        separate=separate)


def train_transform(augment: AugmentConfig, img_size: int, mean: Sequence[float], std: Sequence[float],
                    stored_size: int | None = None) -> PilTransform:
    """Per-image train transform (PIL image in, normalized tensor out).

    ``stored_size``: side of the (square) source images when known; the small recipe resizes to
    ``img_size`` first when it differs (or is unknown).
    """
    if not is_small(augment, img_size):
        return _timm_train(augment, img_size, mean, std, separate=False)
    # Small images: replace timm's primary stage (RandomResizedCrop + flip) by pad-crop + flip.
    _, secondary, final = _timm_train(augment, img_size, mean, std, separate=True)
    geometric: list = []
    if stored_size != img_size:
        geometric.append(T.Resize(img_size, interpolation=_pil_mode(_interp(augment))))
    geometric.append(T.RandomCrop(img_size, padding=augment.crop_padding or None))
    if augment.hflip > 0:
        geometric.append(T.RandomHorizontalFlip(augment.hflip))
    return T.Compose(geometric + list(secondary.transforms) + list(final.transforms))


def eval_transform(augment: AugmentConfig, img_size: int, mean: Sequence[float], std: Sequence[float]) -> PilTransform:
    """Resize to ``img_size / crop_pct``, center crop ``img_size``, normalize (timm's eval recipe)."""
    from timm.data import create_transform
    return create_transform(input_size=img_size, is_training=False, interpolation=_interp(augment),
                            crop_pct=augment.crop_pct, mean=tuple(mean), std=tuple(std))


def _pil_mode(name: str) -> T.InterpolationMode:
    return T.InterpolationMode(name)


class BatchTransform:
    """uint8 N×3×H×W batch -> normalized float batch, with a per-image random pad-crop and flip.

    Same distribution as ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip(hflip)`` +
    ``ToTensor`` + ``Normalize`` (+ timm's ``RandomErasing``) applied image by image: each image
    draws its own offset in ``[0, 2 * padding]`` on both axes (zero padding) and its own flip, from
    torch's global generator as torchvision does (seeded per DataLoader worker by torch).

    The pixel work is numpy on purpose: numpy is single-threaded, while torch would split these
    small ops over its intra-op threads, and when another process holds a core (parallel trials,
    a benchmark) every such split waits for a time slice: measured 30 ms a batch instead of 1 ms.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], padding: int = 0, hflip: float = 0.0,
                 random_erasing: float = 0.0):
        self.mean = (np.asarray(mean, dtype=np.float32) * 255).reshape(1, -1, 1, 1)
        self.inv_std = (1.0 / (np.asarray(std, dtype=np.float32) * 255)).reshape(1, -1, 1, 1)
        self.padding = padding
        self.hflip = hflip
        self.erase = None
        if random_erasing > 0:
            from timm.data.random_erasing import RandomErasing
            self.erase = RandomErasing(random_erasing, mode="pixel", device="cpu")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.numpy()
        x = self._crop_flip(x) if self.padding > 0 or self.hflip > 0 else np.ascontiguousarray(x)
        out = x.astype(np.float32)
        out -= self.mean
        out *= self.inv_std
        result = torch.from_numpy(out)
        if self.erase is not None:
            result = self.erase(result)  # timm's RandomErasing handles batches image by image
        return result

    def _crop_flip(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        p = self.padding
        padded = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
        padded[:, :, p:p + h, p:p + w] = x
        offsets = torch.randint(0, 2 * p + 1, (2, n)).numpy()
        flip = (torch.rand(n) < self.hflip).numpy() if self.hflip > 0 else np.zeros(n, dtype=bool)
        # Every h×w window of each padded image, as a view; one fancy index copies each image's own.
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
        out = windows[np.arange(n), :, offsets[0], offsets[1]]  # n×c×h×w, contiguous
        out[flip] = out[flip][..., ::-1]
        return out


class FromArray:
    """HWC uint8 array -> PIL image (the start of a per-image PIL pipeline on in-memory images)."""

    def __call__(self, image: np.ndarray) -> Image.Image:
        return Image.fromarray(image)


class SmallAugment:
    """The per-image part of the small recipe on in-memory uint8 images, when it has PIL-only ops.

    Pad-crop and flip are a slice of the array (~5 µs, against ~75 µs for torchvision's PIL
    RandomCrop + flip); then timm's secondary stage (RandAugment, colour jitter) runs on a PIL
    image, in timm's order. Returns uint8 CHW: ``ToTensor`` + ``Normalize`` (+ random erasing) are
    done on the whole batch by a ``BatchTransform`` in the collate function. Offsets and flips come
    from Python's ``random``, which RandAugment uses too (seeded per worker by torch).
    """

    def __init__(self, padding: int, hflip: float, secondary: Sequence[Callable]):
        self.padding = padding
        self.hflip = hflip
        self.secondary = list(secondary)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        p = self.padding
        if p > 0:
            # A crop of the zero-padded image at offset (p + sy, p + sx) is the image shifted by (sy, sx).
            sy, sx = random.randint(-p, p), random.randint(-p, p)
            shifted = np.zeros_like(image)
            shifted[max(0, -sy):h - max(0, sy), max(0, -sx):w - max(0, sx)] = \
                image[max(0, sy):h + min(0, sy), max(0, sx):w + min(0, sx)]
            image = shifted
        if self.hflip > 0 and random.random() < self.hflip:
            image = image[:, ::-1]
        pil = Image.fromarray(np.ascontiguousarray(image))
        for op in self.secondary:
            pil = op(pil)
        return torch.from_numpy(np.array(pil)).permute(2, 0, 1)


FastTransforms = tuple["SmallAugment | None", BatchTransform]


def fast_train_transforms(augment: AugmentConfig, img_size: int, mean: Sequence[float], std: Sequence[float],
                          stored_size: int | None) -> FastTransforms | None:
    """``train_transform`` for in-memory uint8 images of the model's size, split into a per-image
    part (None when the recipe is only pad-crop + flip + erasing) and a ``BatchTransform``.

    None when the recipe needs PIL resizing or RandomResizedCrop: use ``train_transform``.
    """
    if not is_small(augment, img_size) or stored_size != img_size:
        return None
    _, secondary, _ = _timm_train(augment, img_size, mean, std, separate=True)
    if not secondary.transforms:
        return None, BatchTransform(mean, std, augment.crop_padding, augment.hflip, augment.random_erasing)
    return (SmallAugment(augment.crop_padding, augment.hflip, secondary.transforms),
            BatchTransform(mean, std, random_erasing=augment.random_erasing))


def fast_eval_transforms(augment: AugmentConfig, img_size: int, mean: Sequence[float], std: Sequence[float],
                         stored_size: int | None) -> FastTransforms | None:
    """Normalize the batch only, when ``eval_transform`` is the identity on the stored images."""
    if stored_size != img_size or augment.crop_pct != 1.0:
        return None
    return None, BatchTransform(mean, std)
