"""The train / val / test splits of a ``DataConfig``, and the torch datasets that serve them.

Two steps, so that checking a config loads no image into memory:

1. ``build_splits(data)`` lists the images (file paths and labels, or in-memory arrays for
   torchvision's CIFAR pickles and synthetic data), carves the class-balanced validation split out
   of train and draws the class-balanced subsets — all deterministic from ``data.seed``. The test
   split is the held-out folder (``test/`` or ``val/``) and never feeds validation. Image files
   the splits use are then checked to decode (``verify.py``: a few bad ones are skipped with a
   warning, many are refused).
2. ``materialize(split, splits.stored_size)`` decodes a split: small square images (≤ 64 px, e.g.
   CIFAR) once into one uint8 array (``decode.py``, cached on disk); large ones stay files, decoded
   image by image in the DataLoader workers.

Datasets: ``ArrayImages`` (in memory, a per-image transform), ``ArrayBatches`` (in memory, whole
uint8 batches; no per-image work) and ``FileImages`` (per-image PIL decode). ``BatchCollate`` finishes
uint8 batches of the first two with a ``BatchTransform`` (normalize, and crop/flip/erase).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigError, MfsearchError, UnreadableImage
from ..memory import host_memory, human
from .config import DataConfig
from .decode import decode_files
from .locate import (CIFAR, DATA_DIR_ENV, Layout, data_home, default_root, ensure_available,  # noqa: F401
                     find_layout, resolve_data, resolve_img_size, resolve_root)
from .sampling import STREAM_SUBSET, balanced_split, balanced_subset
from .synthetic import make_synthetic
from .transforms import BatchTransform
from .verify import check_files, image_problem

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# Square images up to this side are decoded once into memory; larger ones per sample.
IN_MEMORY_MAX_SIDE = 64
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm.data.IMAGENET_DEFAULT_MEAN/STD
SYNTHETIC_STATS = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def dataset_stats(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) used to normalize ``dataset``'s images."""
    if dataset in CIFAR:
        return CIFAR[dataset].mean, CIFAR[dataset].std
    if dataset == "imagefolder":
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
        return tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)
    return SYNTHETIC_STATS


@dataclasses.dataclass(frozen=True)
class SplitSource:
    """One split before decoding: image files or in-memory images (N×H×W×3 uint8), and labels."""

    name: str  # train, val or test
    origin: str  # where the images come from (folder or file), for messages and the decode cache
    targets: np.ndarray
    files: tuple[str, ...] | None = None
    images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, indices: np.ndarray, name: str | None = None) -> "SplitSource":
        return SplitSource(
            name or self.name, self.origin, self.targets[indices],
            None if self.files is None else tuple(self.files[i] for i in indices),
            None if self.images is None else self.images[indices])

    def merged(self, other: "SplitSource") -> "SplitSource":
        """This split's images followed by ``other``'s (same origin), under this split's name."""
        files = None if self.files is None or other.files is None else self.files + other.files
        images = None if self.images is None or other.images is None else np.concatenate([self.images, other.images])
        return SplitSource(self.name, self.origin, np.concatenate([self.targets, other.targets]), files, images)


@dataclasses.dataclass(frozen=True)
class Splits:
    dataset: str
    root: Path | None
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Side of the square images held in memory once decoded; None: decoded per sample from files.
    stored_size: int | None
    train: SplitSource
    val: SplitSource
    test: SplitSource

    def split(self, name: str) -> SplitSource:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def scan_folder(split_dir: Path, class_names: Sequence[str] | None = None) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """(class names, sorted image paths, labels) of a one-folder-per-class tree.

    ``class_names``: the train split's classes; a held-out split may lack some, not add new ones.
    """
    found = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not found:
        raise MfsearchError(f"{split_dir}: no class folders (expected one sub-folder per class with its "
                            f"images), found {_entries(split_dir)}")
    if class_names is None and len(found) < 2:  # torchmetrics (and classification) need two
        raise MfsearchError(f"{split_dir}: found one class folder ({found[0]}/); a classifier needs at least "
                            f"two classes, one sub-folder each")
    classes = tuple(class_names) if class_names is not None else tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise MfsearchError(f"{split_dir}: class folders not in train/: {', '.join(unknown[:8])}")
    index = {name: i for i, name in enumerate(classes)}
    files: list[str] = []
    targets: list[int] = []
    for name in found:
        class_files = sorted(_walk_images(split_dir / name))
        if not class_files:
            raise MfsearchError(f"{split_dir / name}: no images (files ending in {', '.join(IMG_EXTENSIONS)})")
        files.extend(class_files)
        targets.extend([index[name]] * len(class_files))
    return classes, files, np.asarray(targets, dtype=np.int64)


def _walk_images(folder: Path) -> list[str]:
    # Recursive like torchvision's ImageFolder, following links (datasets are often symlinked in).
    return [os.path.join(dirpath, f) for dirpath, _, names in os.walk(folder, followlinks=True)
            for f in names if f.lower().endswith(IMG_EXTENSIONS)]


def _entries(folder: Path) -> str:
    names = sorted(os.listdir(folder))
    return ", ".join(names[:8]) + (f", ... ({len(names)} entries)" if len(names) > 8 else "") if names else "nothing"


def _stored_size(files: Sequence[str], skipped: set[str]) -> int | None:
    """In-memory side from the first train image that opens (its header only): every image of a
    split held in memory gets this size."""
    for path in files:
        if path in skipped:
            continue
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception:  # noqa: BLE001 — unreadable but not used by this run: not our concern here
            continue
        return w if w == h and w <= IN_MEMORY_MAX_SIDE else None
    return None


def _load_folders(data: DataConfig, layout: Layout):
    assert layout.train_dir is not None and layout.test_dir is not None
    classes, train_files, train_targets = scan_folder(layout.train_dir)
    if data.dataset in CIFAR and len(classes) != CIFAR[data.dataset].num_classes:
        raise MfsearchError(f"{layout.train_dir}: {len(classes)} class folders, but {data.dataset} has "
                            f"{CIFAR[data.dataset].num_classes}; check data.dataset and the root")
    _, test_files, test_targets = scan_folder(layout.test_dir, classes)
    train = SplitSource("train", str(layout.train_dir), train_targets, files=tuple(train_files))
    test = SplitSource("test", str(layout.test_dir), test_targets, files=tuple(test_files))
    return classes, None, train, test  # stored size: once unreadable files are known (build_splits)


def _load_torchvision(data: DataConfig, layout: Layout):
    import torchvision

    info = CIFAR[data.dataset]
    cls = getattr(torchvision.datasets, info.torchvision_class)
    out = []
    for name, is_train in (("train", True), ("test", False)):
        try:
            ds = cls(str(layout.root), train=is_train, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise MfsearchError(f"{layout.root / info.torchvision_dir}: incomplete or corrupted ({err}); "
                                f"delete it to download again") from err
        out.append(SplitSource(name, str(layout.root / info.torchvision_dir),
                               np.asarray(ds.targets, dtype=np.int64), images=np.ascontiguousarray(ds.data)))
        classes = tuple(ds.classes)
    return classes, 32, out[0], out[1]


def _load_synthetic(data: DataConfig):
    size, k = resolve_img_size(data), data.synthetic_classes
    # The test split is a fifth of the train size (at least one image per class).
    test_n = max(k, data.synthetic_size // 5)
    needed, available = (data.synthetic_size + test_n) * size * size * 3, host_memory()
    if available is not None and needed > available:  # generated in memory, as uint8
        raise ConfigError("data.img_size", f"{size} px makes {data.synthetic_size + test_n} synthetic images of "
                                           f"{human(needed)}, more than this machine's {human(available)} of memory")
    train_x, train_y = make_synthetic(data.synthetic_size, k, size, data.seed, stream=0)
    test_x, test_y = make_synthetic(test_n, k, size, data.seed, stream=1)
    return (tuple(f"class{i}" for i in range(k)), size,
            SplitSource("train", "synthetic", train_y, images=train_x),
            SplitSource("test", "synthetic", test_y, images=test_x))


def build_splits(data: DataConfig, layout: Layout | None = None) -> Splits:
    """List the data of ``data`` and draw its deterministic, class-balanced splits and subsets.

    Image files the splits use are checked to decode (``verify.check_files``, cached): unreadable
    ones are dropped from their split with a warning, or refused when there are many. Does not
    download (``ensure_available`` does).
    """
    data = resolve_data(data)
    layout = layout or ensure_available(data, download=False)
    if layout.kind == "synthetic":
        classes, stored, train, test = _load_synthetic(data)
    elif layout.kind == "torchvision":
        classes, stored, train, test = _load_torchvision(data, layout)
    else:
        classes, stored, train, test = _load_folders(data, layout)

    listing = train.files  # all of train/, in order: the first readable image sets the stored size
    keep, held = balanced_split(train.targets, data.val_fraction, data.seed)
    val = train.take(held, "val")
    train = train.take(keep)
    if data.val_subset is not None and data.val_fraction == 0:
        raise ConfigError("data.val_subset", "needs a validation split: set val_fraction > 0")
    subsets = {"train": data.train_subset, "val": data.val_subset, "test": data.test_subset}
    drawn = {}
    for split in (train, val, test):
        n = subsets[split.name]
        if n is not None:
            if n > len(split):
                extra = f" (after holding out val_fraction={data.val_fraction})" if split.name != "test" else ""
                raise ConfigError(f"data.{split.name}_subset",
                                  f"must be at most the {len(split)} images of the {split.name} split{extra}, got {n}")
            split = split.take(balanced_subset(split.targets, n, data.seed, STREAM_SUBSET[split.name]))
        drawn[split.name] = split
    if data.train_on_val and len(drawn["val"]) == 0:
        raise ConfigError("data.train_on_val", "needs a validation split to merge: set val_fraction > 0")
    if layout.kind == "folders":  # the last check: it decodes every image used (cached)
        assert listing is not None
        drawn, skipped = _drop_unreadable(drawn, str(layout.root))
        stored = _stored_size(listing, skipped)
    if data.train_on_val:
        drawn["train"], drawn["val"] = drawn["train"].merged(drawn["val"]), drawn["val"].take(np.empty(0, dtype=np.int64))
    mean, std = dataset_stats(data.dataset)
    return Splits(data.dataset, layout.root, classes, mean, std, stored, drawn["train"], drawn["val"], drawn["test"])


def _drop_unreadable(drawn: dict[str, SplitSource], root: str) -> tuple[dict[str, SplitSource], set[str]]:
    """The splits without the image files that do not decode, and those files (see ``verify``)."""
    files = [f for split in drawn.values() for f in split.files or ()]
    bad = check_files(files, root)
    if not bad:
        return drawn, bad
    kept = {name: split.take(np.asarray([i for i, f in enumerate(split.files or ()) if f not in bad], dtype=np.int64))
            for name, split in drawn.items()}
    return kept, bad


def materialize(split: SplitSource, stored_size: int | None) -> np.ndarray | None:
    """The split's images as one uint8 N×H×W×3 array (decoding files once), or None when they are
    too large to hold in memory and are decoded per sample."""
    if split.images is not None:
        return split.images
    if stored_size is None or split.files is None:
        return None
    return decode_files(split.files, stored_size, tag=f"{split.origin} ({split.name})")


class ArrayImages(Dataset):
    """In-memory uint8 images (N×H×W×3); ``transform`` maps one HWC array to a tensor (a PIL
    pipeline starts with ``transforms.FromArray``). Without a transform: the uint8 CHW tensor."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, transform: Callable | None = None):
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if self.transform is None:
            return torch.from_numpy(self.images[index]).permute(2, 0, 1), int(self.targets[index])
        return self.transform(self.images[index]), int(self.targets[index])


class ArrayBatches(ArrayImages):
    """In-memory uint8 images served a batch at a time: torch's DataLoader calls ``__getitems__``
    with the whole batch of indices, and one fancy index replaces ``batch_size`` Python calls.
    Pair it with ``BatchCollate``, which augments and normalizes the uint8 batch."""

    def __init__(self, images: np.ndarray, targets: np.ndarray):
        super().__init__(images, targets, transform=None)

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices)
        images = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2)
        return images, torch.from_numpy(self.targets[idx])


class BatchCollate:
    """collate_fn for uint8 samples (``ArrayBatches``, or ``ArrayImages`` with a ``SmallAugment``):
    applies a ``BatchTransform`` to the stacked uint8 batch."""

    def __init__(self, transform: BatchTransform):
        self.transform = transform

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(batch, tuple):  # from __getitems__
            images, targets = batch
        else:  # a list of samples (a sampler without batches)
            images = torch.stack([image for image, _ in batch])
            targets = torch.as_tensor([target for _, target in batch], dtype=torch.int64)
        return self.transform(images), targets


class FileImages(Dataset):
    """Image files decoded per sample with PIL (large images; run in DataLoader workers)."""

    def __init__(self, files: Sequence[str], targets: np.ndarray, transform: Callable):
        self.files = files
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        path = self.files[index]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except Exception as err:  # noqa: BLE001 — any decode failure: name the file, not PIL's internals
            # verify.py checked it before the run, so it most likely changed since: stop, naming it.
            raise UnreadableImage(f"{path}: does not decode ({image_problem(path) or err}), met during training; "
                                  f"fix or remove it and start again") from None
        return self.transform(image), int(self.targets[index])
