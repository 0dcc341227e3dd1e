"""The data layer: where datasets live, deterministic class-balanced splits, fast loaders.

    from mfsearch.data import DataConfig, ImageDataModule, check_data
    check_data(DataConfig("cifar10", train_subset=5000))          # fails fast, one clear line
    dm = ImageDataModule(DataConfig("cifar10"), batch_size=128, seed=0)
    dm.num_classes, dm.img_size, dm.train_size                    # no decoding needed
    dm.setup("fit"); next(iter(dm.train_dataloader()))            # (float N×3×H×W, int64 N)

Modules: ``config`` (DataConfig, AugmentConfig), ``locate`` (roots, layouts, download),
``sampling`` (splits and subsets), ``decode`` (decoding small images once, disk cache),
``verify`` (every image used decodes before a run: a few bad files skipped, more than 1% refused),
``synthetic``, ``datasets`` (splits and torch datasets), ``transforms``, ``datamodule``.
"""
from .config import AugmentConfig, DataConfig
from .datamodule import ImageDataModule, check_data
from .locate import resolve_data, resolve_img_size, resolve_root

__all__ = ["AugmentConfig", "DataConfig", "ImageDataModule", "check_data", "resolve_data", "resolve_img_size",
           "resolve_root"]
