"""Register ``identityformer_*`` and ``randformer_*`` (which timm lacks) in timm's model registry.

Imported by ``import mfsearch``. Afterwards ``timm.create_model("randformer_s12", pretrained=True)``
builds an mfsearch MetaFormer and loads the official checkpoint through timm's own machinery
(download, classifier reset, ``checkpoint_filter_fn`` key mapping).
"""
from __future__ import annotations

import sys

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.metaformer import checkpoint_filter_fn

from .errors import ConfigError
from .model import MetaFormer
from .presets import FAMILIES, OFFICIAL_URL, get_preset

TIMM_LACKS = [f for f in FAMILIES.values() if not f.in_timm]


def _cfg(url: str) -> dict:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 1.0, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "classifier": "head.fc", "first_conv": "stem.conv",
        "license": "apache-2.0",
    }


default_cfgs = generate_default_cfgs({
    f"{f.name}_{size}.sail_in1k": _cfg(OFFICIAL_URL.format(family=f.name, name=f"{f.name}_{size}"))
    for f in TIMM_LACKS for size in f.sizes
})

# timm keyword arguments -> config fields.
_TIMM_KWARGS = {"num_classes": "num_classes", "in_chans": "in_chans", "drop_path_rate": "drop_path_rate",
                "drop_rate": "head.dropout", "img_size": "img_size"}


def _builder(preset: str):
    def build(**kwargs) -> MetaFormer:
        unknown = sorted(set(kwargs) - set(_TIMM_KWARGS))
        if unknown:
            raise ConfigError(unknown[0], f"not supported by {preset}; supported: {', '.join(_TIMM_KWARGS)}")
        cfg = get_preset(preset).replace(**{_TIMM_KWARGS[k]: v for k, v in kwargs.items()})
        return MetaFormer(cfg)
    return build


def _entrypoint(preset: str):
    def entrypoint(pretrained: bool = False, **kwargs) -> MetaFormer:
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return build_model_with_cfg(_builder(preset), preset, pretrained,
                                    pretrained_filter_fn=checkpoint_filter_fn,
                                    feature_cfg=dict(flatten_sequential=True), **kwargs)
    entrypoint.__name__ = entrypoint.__qualname__ = preset
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"{preset} (mfsearch preset; official MetaFormer Baselines checkpoint)."
    return entrypoint


for _family in TIMM_LACKS:
    for _size in _family.sizes:
        _name = f"{_family.name}_{_size}"
        setattr(sys.modules[__name__], _name, register_model(_entrypoint(_name)))
