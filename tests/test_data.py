"""The data layer on the real CIFAR-10 ImageFolder tree (skipped without it) and on synthetic data.

Small subsets keep the file fast; nothing here downloads (``download=False`` or a failing
downloader stands in for the network).
"""
from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mfsearch.data import AugmentConfig, DataConfig, ImageDataModule, check_data
from mfsearch.data import decode, locate
from mfsearch.data.datamodule import auto_num_workers
from mfsearch.data.datasets import ArrayBatches, ArrayImages, build_splits
from mfsearch.data.sampling import balanced_split, balanced_subset
from mfsearch.data.transforms import BatchTransform, SmallAugment, train_transform
from mfsearch.errors import ConfigError, MfsearchError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Caches go to a temp dir; no data dir from the caller's environment."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(locate.DATA_DIR_ENV, raising=False)


def small(root: Path, **kw) -> DataConfig:
    return DataConfig("cifar10", root=str(root), **{"train_subset": 400, "val_subset": 100, "test_subset": 200, **kw})


def counts(split) -> list[int]:
    return [n for _, n in sorted(Counter(split.targets.tolist()).items())]


# ---------------------------------------------------------------- real CIFAR-10 folder tree
def test_cifar_folder_tree_classes_and_sizes(cifar10_root):
    splits = build_splits(DataConfig("cifar10", root=str(cifar10_root)))
    assert splits.class_names == CIFAR10_CLASSES
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45000, 5000, 10000)
    assert counts(splits.train) == [4500] * 10 and counts(splits.val) == [500] * 10
    assert counts(splits.test) == [1000] * 10
    assert splits.stored_size == 32  # small images: decoded once into memory
    assert (splits.mean, splits.std) == (CIFAR10_MEAN, CIFAR10_STD)
    # Labels follow the folder a file is in.
    for path, label in zip(splits.test.files[::997], splits.test.targets[::997]):
        assert Path(path).parent.name == CIFAR10_CLASSES[label]


def test_val_split_and_subsets_balanced_disjoint_deterministic(cifar10_root):
    a = build_splits(small(cifar10_root, seed=0))
    assert counts(a.train) == [40] * 10 and counts(a.val) == [10] * 10 and counts(a.test) == [20] * 10
    assert not set(a.train.files) & set(a.val.files)
    # Validation comes from train/, never from test/; the test split comes from test/ only.
    assert all(Path(f).parts[-3] == "train" for f in a.train.files + a.val.files)
    assert all(Path(f).parts[-3] == "test" for f in a.test.files)
    same = build_splits(small(cifar10_root, seed=0))
    assert (same.train.files, same.val.files, same.test.files) == (a.train.files, a.val.files, a.test.files)
    other = build_splits(small(cifar10_root, seed=1))
    assert other.train.files != a.train.files and other.val.files != a.val.files
    assert other.test.files != a.test.files
    # Without a test subset the test split is the whole test/ folder, whatever the seed.
    full = [build_splits(DataConfig("cifar10", root=str(cifar10_root), seed=s, train_subset=10)).test.files
            for s in (0, 1)]
    assert full[0] == full[1] and len(full[0]) == 10000
    # The validation split does not depend on the train subset drawn after it.
    bigger = build_splits(small(cifar10_root, seed=0, train_subset=800, val_subset=None))
    assert set(a.val.files) <= set(bigger.val.files)
    # train_on_val (retrain --full-train): exactly the train and validation images, nothing held out.
    merged = build_splits(small(cifar10_root, seed=0, train_on_val=True))
    assert merged.train.files == a.train.files + a.val.files and len(merged.val) == 0
    assert np.array_equal(merged.train.targets, np.concatenate([a.train.targets, a.val.targets]))
    assert merged.test.files == a.test.files


def test_sampling_is_balanced_with_uneven_classes():
    targets = np.repeat(np.arange(4), [50, 30, 5, 15])
    keep, held = balanced_split(targets, 0.2, seed=3)
    assert np.bincount(targets[held]).tolist() == [10, 6, 1, 3]
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(targets)
    sub = balanced_subset(targets, 43, seed=3, stream=1)
    # 43 over 4 classes: the 5-image class gives all it has, the others share the rest evenly.
    per_class = np.bincount(targets[sub]).tolist()
    assert sum(per_class) == 43 and per_class[2] == 5 and max(per_class) - min(per_class[:2] + per_class[3:]) <= 1
    assert np.array_equal(sub, balanced_subset(targets, 43, seed=3, stream=1))
    assert not np.array_equal(sub, balanced_subset(targets, 43, seed=4, stream=1))


def test_batches_shapes_dtypes_and_normalisation(cifar10_root):
    dm = ImageDataModule(small(cifar10_root), batch_size=64)
    assert (dm.num_classes, dm.img_size, dm.class_names) == (10, 32, CIFAR10_CLASSES)
    assert (dm.train_size, dm.val_size, dm.test_size) == (400, 100, 200)
    dm.setup("fit")
    dm.setup("test")
    assert isinstance(dm.dataset("train"), ArrayBatches) and dm.num_workers() == 0
    loader = dm.train_dataloader()
    assert len(loader) == 400 // 64  # drop_last
    x, y = next(iter(loader))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() < 10
    # Eval batches are exactly the normalized JPEG pixels, in file order.
    x, y = next(iter(dm.test_dataloader()))
    files = dm.splits.test.files
    for i in (0, 17, 63):
        pixels = torch.from_numpy(np.array(Image.open(files[i]).convert("RGB"))).permute(2, 0, 1) / 255
        expected = (pixels - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
        assert torch.allclose(x[i], expected, atol=1e-5)
        assert y[i] == dm.splits.test.targets[i]
    # Normalized with CIFAR's own statistics: roughly zero mean, unit std per channel.
    xs = torch.cat([b for b, _ in dm.val_dataloader()])
    assert xs.mean(dim=(0, 2, 3)).abs().max() < 0.25
    assert ((xs.std(dim=(0, 2, 3)) - 1).abs() < 0.25).all()


def test_same_seed_same_batch_order(cifar10_root):
    def first_batch(seed):
        dm = ImageDataModule(small(cifar10_root), batch_size=32, seed=seed)
        torch.manual_seed(0)  # crops and flips follow torch's global seed (lightning.seed_everything)
        return next(iter(dm.train_dataloader()))

    (xa, ya), (xb, yb), (_, yc) = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(ya, yb) and torch.equal(xa, xb)
    assert not torch.equal(ya, yc)


def test_randaugment_runs_per_image_then_per_batch(cifar10_root):
    aug = AugmentConfig(rand_augment="rand-m6-mstd0.5-inc1", random_erasing=0.25)
    dm = ImageDataModule(small(cifar10_root, train_subset=100), aug, batch_size=50)
    train = dm.dataset("train")
    assert isinstance(train, ArrayImages) and isinstance(train.transform, SmallAugment)
    assert [type(t).__name__ for t in train.transform.secondary] == ["RandAugment"]
    assert train.transform.padding == 4 and train.transform.hflip == 0.5
    collate = dm.train_dataloader().collate_fn
    assert collate.transform.padding == 0 and collate.transform.erase is not None  # erasing: per batch
    assert auto_num_workers(train, training_on_cpu=True, cpus=2) == 0  # inline beats a worker on CPU
    assert auto_num_workers(train, training_on_cpu=False, cpus=16) == 8  # beside a GPU step
    x, y = next(iter(DataLoader(train, batch_size=50, collate_fn=collate)))
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()
    # The per-image PIL form of the same recipe: timm's secondary and final stages after pad-crop + flip.
    names = [type(t).__name__ for t in train_transform(aug, 32, CIFAR10_MEAN, CIFAR10_STD, 32).transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "RandAugment", "MaybeToTensor", "Normalize",
                     "RandomErasing"]


def test_large_images_use_timm_recipe():
    aug = AugmentConfig(rand_augment="rand-m9-mstd0.5-inc1")
    names = [type(t).__name__ for t in train_transform(aug, 224, CIFAR10_MEAN, CIFAR10_STD).transforms]
    assert names[0] == "RandomResizedCropAndInterpolation" and "RandAugment" in names


def _crop_flip_params(out: torch.Tensor, image: torch.Tensor, padding: int) -> tuple[int, int, int]:
    """The (dy, dx, flip) that turns ``image`` into ``out`` (a crop of the zero-padded image)."""
    h, w = image.shape[-2:]
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            for flip in (0, 1):
                if torch.equal(out, crop.flip(-1) if flip else crop):
                    return dy, dx, flip
    raise AssertionError("not a crop (or mirrored crop) of the padded image")


def test_batch_transform_is_a_per_image_pad_crop_and_flip():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    norm = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(BatchTransform(mean, std)(images), norm, atol=1e-5)
    assert torch.allclose(BatchTransform(mean, std, hflip=1.0)(images), norm.flip(-1), atol=1e-5)
    torch.manual_seed(0)
    out = BatchTransform((0, 0, 0), (1 / 255,) * 3, padding=2, hflip=0.5)(images)  # identity normalization
    params = [_crop_flip_params(out[i], images[i].float(), 2) for i in range(len(images))]
    assert len({p[:2] for p in params}) > 10 and {p[2] for p in params} == {0, 1}  # drawn per image


def test_small_augment_is_a_pad_crop_and_flip():
    random.seed(0)
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    aug = SmallAugment(padding=2, hflip=0.5, secondary=[])
    params = []
    for image in images:
        out = aug(image)
        assert out.dtype == torch.uint8 and out.shape == (3, 8, 8)
        params.append(_crop_flip_params(out, torch.from_numpy(image).permute(2, 0, 1), 2))
    assert len({p[:2] for p in params}) > 10 and {p[2] for p in params} == {0, 1}


# ---------------------------------------------------------------- synthetic data
def test_synthetic_is_deterministic_and_learnable():
    dm = ImageDataModule(DataConfig("synthetic", synthetic_size=1000, val_fraction=0.1), batch_size=50)
    assert (dm.num_classes, dm.img_size, dm.train_size, dm.val_size, dm.test_size) == (10, 32, 900, 100, 200)
    again = build_splits(DataConfig("synthetic", synthetic_size=1000, val_fraction=0.1))
    assert np.array_equal(dm.splits.train.images, again.train.images)
    other = build_splits(DataConfig("synthetic", synthetic_size=1000, val_fraction=0.1, seed=1))
    assert not np.array_equal(dm.splits.train.images, other.train.images)

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, stride=2),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(6):
        for x, y in dm.train_dataloader():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in dm.test_dataloader())
    assert correct / dm.test_size > 0.5  # chance: 0.1


# ---------------------------------------------------------------- roots and errors
def test_data_dir_env_and_cache_default(cifar10_root, tmp_path, monkeypatch):
    monkeypatch.chdir(cifar10_root.parent.parent)
    monkeypatch.setenv(locate.DATA_DIR_ENV, cifar10_root.parent.name)  # relative, e.g. "data"
    data = DataConfig("cifar10", train_subset=100, val_subset=20, test_subset=20)
    assert locate.resolve_root(data) == cifar10_root.resolve()
    dm = ImageDataModule(data, batch_size=20)
    monkeypatch.chdir(tmp_path)  # as Ray Tune does to a trial: the module keeps the absolute root
    assert Path(dm.data.root) == cifar10_root.resolve() and dm.train_size == 100
    monkeypatch.delenv(locate.DATA_DIR_ENV)
    assert locate.resolve_root(data) == tmp_path / "cache" / "mfsearch" / "data" / "cifar10"
    assert locate.resolve_root(DataConfig("cifar10", root="rel")) == tmp_path / "rel"


def test_missing_cifar_names_the_path(tmp_path, monkeypatch):
    root = tmp_path / "nowhere" / "cifar10"
    with pytest.raises(MfsearchError, match="--data-root") as err:
        check_data(DataConfig("cifar10", root=str(root)), download=False)
    assert str(root) in str(err.value) and "MFSEARCH_DATA_DIR" in str(err.value)
    assert "\n" not in str(err.value)

    def offline(dataset, root):  # what urllib raises without a network
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(locate, "download_cifar", offline)
    with pytest.raises(MfsearchError, match="download failed") as err:
        ImageDataModule(DataConfig("cifar10", root=str(root))).prepare_data()
    assert str(root) in str(err.value) and "online" in str(err.value)


def test_wrong_layouts(tmp_path, cifar10_root):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("x")
    with pytest.raises(MfsearchError, match="expected train/ and val/ or test/") as err:
        check_data(DataConfig("imagefolder", root=str(tmp_path)))
    assert str(tmp_path) in str(err.value) and "images/" in str(err.value) and "labels.csv" in str(err.value)
    # imagefolder with train/ only
    (tmp_path / "train" / "cat").mkdir(parents=True)
    os.symlink(next(cifar10_root.glob("train/cat/*.jpg")), tmp_path / "train" / "cat" / "0.jpg")
    with pytest.raises(MfsearchError, match="val/ or test/"):
        check_data(DataConfig("imagefolder", root=str(tmp_path)))
    # CIFAR root with half a tree: an error, not a download
    with pytest.raises(MfsearchError, match="expected train/ and test/"):
        check_data(DataConfig("cifar10", root=str(tmp_path)))
    with pytest.raises(MfsearchError, match="does not exist"):
        check_data(DataConfig("imagefolder", root=str(tmp_path / "missing")))
    # torchvision layout that is incomplete
    tv = tmp_path / "tv"
    (tv / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(MfsearchError, match="corrupted"):
        check_data(DataConfig("cifar10", root=str(tv)), download=False)
    # the cifar100 recipe pointed at CIFAR-10
    with pytest.raises(MfsearchError, match="10 class folders, but cifar100 has 100"):
        check_data(DataConfig("cifar100", root=str(cifar10_root)))


def test_subset_larger_than_split_is_a_config_error(cifar10_root):
    with pytest.raises(ConfigError, match=r"data.train_subset: must be at most the 45000 images"):
        check_data(DataConfig("cifar10", root=str(cifar10_root), train_subset=50000))
    with pytest.raises(ConfigError, match="data.val_subset"):
        check_data(DataConfig("cifar10", root=str(cifar10_root), val_fraction=0.0, val_subset=10))
    with pytest.raises(ConfigError, match="data.train_on_val: needs a validation split"):
        check_data(DataConfig("cifar10", root=str(cifar10_root), val_fraction=0.0, train_on_val=True))
    with pytest.raises(ConfigError, match="batch_size"):
        ImageDataModule(small(cifar10_root, train_subset=50), batch_size=64).train_dataloader()


def test_imagefolder_layout(tmp_path, cifar10_root):
    """An ImageNet-style tree (here: links to CIFAR files) with val/ as its held-out split."""
    for split, n in (("train", 12), ("val", 4)):
        for name in ("cat", "ship"):
            (tmp_path / split / name).mkdir(parents=True)
            src = sorted((cifar10_root / ("train" if split == "train" else "test") / name).glob("*.jpg"))[:n]
            for f in src:
                os.symlink(f, tmp_path / split / name / f.name)
    data = DataConfig("imagefolder", root=str(tmp_path), img_size=48, val_fraction=0.25)
    check_data(data)
    dm = ImageDataModule(data, batch_size=6)
    assert dm.class_names == ("cat", "ship") and dm.num_classes == 2
    assert (dm.train_size, dm.val_size, dm.test_size) == (18, 6, 8)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (6, 3, 48, 48) and set(y.tolist()) <= {0, 1}  # resized from the stored 32 px
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (6, 3, 48, 48)


def test_decoded_images_are_cached_on_disk(cifar10_root, tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "CACHE_MIN_IMAGES", 0)
    data = small(cifar10_root, train_subset=50)
    first = ImageDataModule(data).dataset("train").images
    cached = list((tmp_path / "cache" / "mfsearch" / "decoded").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npy"  # written atomically: no temp file left
    second = ImageDataModule(data).dataset("train").images
    assert np.array_equal(first, second) and first.shape == (50, 32, 32, 3)
    ImageDataModule(small(cifar10_root, train_subset=60)).dataset("train")  # another file list: another entry
    assert len(list(cached[0].parent.iterdir())) == 2


def test_lightning_fit_and_test_with_the_datamodule():
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self, num_classes: int):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                           torch.nn.Linear(8, num_classes))
            self.seen = {"train": 0, "val": 0, "test": 0}

        def step(self, batch, split):
            x, y = batch
            self.seen[split] += len(x)
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def training_step(self, batch, _):
            return self.step(batch, "train")

        def validation_step(self, batch, _):
            self.step(batch, "val")

        def test_step(self, batch, _):
            self.step(batch, "test")

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.1)

    dm = ImageDataModule(DataConfig("synthetic", synthetic_size=300, val_fraction=0.2), batch_size=40)
    model = Tiny(dm.num_classes)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    assert dm.training_on_cpu() and dm.num_workers() == 0
    # 240 train images -> 6 full batches; val and test are seen whole.
    assert model.seen == {"train": 240, "val": 60 + 60, "test": 60}  # val: sanity check + epoch end
