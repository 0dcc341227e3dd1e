"""The Python API: ``create_model``, ``count_cost``, ``resolve_arch``, ``list_presets``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from torch import nn

from .config import ArchConfig, apply_overrides, load_arch_yaml, parse_arch
from .cost import ModelCost, count_config
from .errors import ConfigError
from .memory import check_model_fits
from .model import MetaFormer
from .presets import get_preset, list_presets

ArchLike = Union[ArchConfig, str, Path, dict]

__all__ = ["ArchLike", "count_cost", "create_model", "list_presets", "resolve_arch"]


def resolve_arch(arch: ArchLike, **overrides: Any) -> ArchConfig:
    """A preset name, a path to an arch YAML, a raw dict or an ArchConfig -> a validated ArchConfig.

    ``overrides`` are applied on top (``num_classes=10``, ``img_size=32``, ``mlp_act="gelu"``,
    ``**{"head.dropout": 0.1}``, ``**{"stages[2].mixer": "attention"}``).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(arch, ArchConfig):
        cfg = arch
    elif isinstance(arch, dict):
        cfg = parse_arch(arch)
    elif isinstance(arch, (str, Path)):
        text = str(arch)
        if text in list_presets():
            cfg = get_preset(text)
        elif text.endswith((".yaml", ".yml")) or Path(text).is_file():
            cfg = load_arch_yaml(text)
        else:
            raise ConfigError("arch", f"{text!r} is neither a preset nor a YAML file; presets: "
                                      f"{', '.join(list_presets())}")
    else:
        raise ConfigError("arch", f"expected a preset name, a YAML path, a dict or an ArchConfig, "
                                  f"got {type(arch).__name__}")
    return apply_overrides(cfg, overrides)


def create_model(arch: ArchLike, num_classes: int | None = None, img_size: int | None = None,
                 pretrained: bool | str | Path = False, pretrained_sha256: str | None = None,
                 **overrides: Any) -> nn.Module:
    """Build a MetaFormer.

    Args:
        arch: preset name (see ``list_presets()``), path to an arch YAML, dict or ArchConfig.
        num_classes, img_size: shortcuts for the config fields of the same name.
        pretrained: ``True`` loads the published ImageNet weights of a preset (downloaded through
            timm / the official release; the classifier is re-initialised when ``num_classes`` is not
            1000); a path loads a ``.safetensors`` file saved from an mfsearch model. Downloads are
            checked against a recorded SHA-256 (``mfsearch.weights_download``).
        pretrained_sha256: pin the downloaded file's SHA-256 (else the recorded one is used).
        overrides: any config field (see ``resolve_arch``).
    """
    cfg = resolve_arch(arch, num_classes=num_classes, img_size=img_size, **overrides)
    check_model_fits(cfg)  # a ConfigError naming the field, not the allocator's 588 GB traceback
    model = MetaFormer(cfg)
    if pretrained is True:
        from .interop import load_published_weights
        if not isinstance(arch, str) or arch not in list_presets():
            raise ConfigError("pretrained", "published weights exist only for presets; pass a "
                                            "path to a .safetensors file for other architectures")
        load_published_weights(model, arch, pretrained_sha256)
    elif pretrained:
        from .interop import load_weights_file
        load_weights_file(model, pretrained)
    return model


def count_cost(arch: ArchLike, img_size: int | None = None, **overrides: Any) -> ModelCost:
    """Trainable params, frozen params and MACs (absolute counts) with a per-stage breakdown.

    Analytic: allocates no weights. ``img_size`` defaults to the config's (224 for presets).
    """
    if img_size is not None:  # validated like any field (0 or -3 px is an error, not "the default")
        overrides["img_size"] = img_size
    return count_config(resolve_arch(arch, **overrides))
