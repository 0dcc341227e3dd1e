"""The paper's 23 models as data: a family table times a size table.

Families share the skeleton and differ in the mixer per stage, the block norm and the head
(sail-sg/metaformer ``metaformer_baselines.py`` @64c534a). Settings common to all five: MLP ratio 4
with StarReLU and no bias, ResScale 1.0 in stages 3-4 only, no LayerScale, channel-LN stem and
downsampling, output LayerNorm with bias.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ArchConfig, parse_arch
from .errors import ConfigError

SMALL_DIMS, MEDIUM_DIMS = [64, 128, 320, 512], [96, 192, 384, 768]

# (depths, dims) per size name, for each of the paper's two size ladders.
POOL_LIKE_SIZES = {
    "s12": ([2, 2, 6, 2], SMALL_DIMS), "s24": ([4, 4, 12, 4], SMALL_DIMS),
    "s36": ([6, 6, 18, 6], SMALL_DIMS), "m36": ([6, 6, 18, 6], MEDIUM_DIMS),
    "m48": ([8, 8, 24, 8], MEDIUM_DIMS),
}
CONV_LIKE_SIZES = {
    "s18": ([3, 3, 9, 3], SMALL_DIMS), "s36": ([3, 12, 18, 3], SMALL_DIMS),
    "m36": ([3, 12, 18, 3], [96, 192, 384, 576]), "b36": ([3, 12, 18, 3], [128, 256, 512, 768]),
}


@dataclass(frozen=True)
class Family:
    name: str            # lower-case family tag, e.g. "caformer"
    title: str           # as printed in the paper, e.g. "CAFormer"
    arch: dict           # family-specific config fields (mixer, norm, head)
    sizes: dict          # size -> (depths, dims)
    in_timm: bool        # timm ships the same models (and weights)
    drop_path: dict      # paper recipe: ImageNet drop-path rate per size (official scripts/)
    head_dropout: dict   # paper recipe: MLP-head dropout per size


PAPER_COMMON: dict[str, Any] = {
    "mlp_ratio": 4.0, "mlp_act": "starrelu", "mlp_bias": False,
    "res_scale_init": [None, None, 1.0, 1.0], "layer_scale_init": None,
}
LINEAR_HEAD = {"type": "linear"}
MLP_HEAD = {"type": "mlp", "mlp_ratio": 4.0, "act": "squared_relu", "norm_eps": 1e-5}

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("identityformer", "IdentityFormer", {"mixer": "identity", "norm": "groupnorm1", "head": LINEAR_HEAD},
           POOL_LIKE_SIZES, False, {"s12": 0.1, "s24": 0.1, "s36": 0.2, "m36": 0.3, "m48": 0.4}, {}),
    Family("randformer", "RandFormer",
           {"mixer": ["identity", "identity", "random", "random"], "norm": "groupnorm1", "head": LINEAR_HEAD},
           POOL_LIKE_SIZES, False, {"s12": 0.1, "s24": 0.1, "s36": 0.2, "m36": 0.3, "m48": 0.3}, {}),
    Family("poolformerv2", "PoolFormerV2", {"mixer": "pooling", "norm": "groupnorm1", "head": LINEAR_HEAD},
           POOL_LIKE_SIZES, True, {"s12": 0.1, "s24": 0.1, "s36": 0.2, "m36": 0.3, "m48": 0.4}, {}),
    Family("convformer", "ConvFormer", {"mixer": "sepconv", "norm": "layernorm", "head": MLP_HEAD},
           CONV_LIKE_SIZES, True, {"s18": 0.2, "s36": 0.3, "m36": 0.4, "b36": 0.6},
           {"s18": 0.0, "s36": 0.0, "m36": 0.0, "b36": 0.0}),
    Family("caformer", "CAFormer",
           {"mixer": ["sepconv", "sepconv", "attention", "attention"], "norm": "layernorm", "head": MLP_HEAD},
           CONV_LIKE_SIZES, True, {"s18": 0.15, "s36": 0.3, "m36": 0.4, "b36": 0.6},
           {"s18": 0.0, "s36": 0.4, "m36": 0.4, "b36": 0.5}),
)}

# Official checkpoints of the two families timm lacks (sail-sg/metaformer README).
OFFICIAL_URL = "https://huggingface.co/sail/dl/resolve/main/{family}/{name}.pth"


def family_arch(family: str, depths: list[int], dims: list[int], **fields: Any) -> dict:
    """Raw config of ``family`` at any depths/dims (paper norms, head and scales).

    With other than 4 stages, per-stage settings follow the paper's pattern "the last two stages
    differ": e.g. CAFormer is sepconv in all stages but the last two, which use attention.
    """
    fam = FAMILIES[family]
    raw = {**PAPER_COMMON, **fam.arch}
    n = len(depths)
    for key, value in raw.items():
        if isinstance(value, list) and len(value) == 4 and n != 4:
            raw[key] = [value[0]] * max(0, n - 2) + value[-min(n, 2):]
    return {**raw, "depth": list(depths), "dim": list(dims), **fields}


def preset_raw(name: str) -> dict:
    family, _, size = name.partition("_")
    if family not in FAMILIES or size not in FAMILIES[family].sizes:
        raise ConfigError("", f"unknown preset {name!r}; presets: {', '.join(list_presets())}")
    depths, dims = FAMILIES[family].sizes[size]
    return family_arch(family, depths, dims)


def get_preset(name: str, **top_level: Any) -> ArchConfig:
    """A preset's ArchConfig; ``top_level`` sets global fields such as ``num_classes``."""
    return parse_arch({**preset_raw(name), **top_level}, source=f"preset {name}")


def list_presets() -> list[str]:
    return [f"{f.name}_{size}" for f in FAMILIES.values() for size in f.sizes]


def preset_family(name: str) -> Family:
    return FAMILIES[name.partition("_")[0]]
