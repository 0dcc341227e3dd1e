"""Training recipes as data: ``paper`` (the official ImageNet recipe per family) and ``small``.

A recipe is a ``TrainConfig``; every field can be overridden (``--set lr=1e-3``,
``--set augment.rand_augment=null``). ``paper`` follows sail-sg/metaformer's train.py defaults
and scripts/ (total batch 4096 — reached here through gradient accumulation — AdamW 4e-3 or,
for CAFormer, LAMB 8e-3; per-size drop path and head dropout). ``small`` is tuned for 32-px
images and a few minutes of CPU: no Mixup/CutMix/RandAugment (they need long schedules to pay off).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

from ..data.config import AugmentConfig
from ..errors import ConfigError
from ..schema import non_negative, parse_dataclass, positive, probability, to_plain

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = dataclasses.field(default=300, metadata={"check": positive})
    batch_size: int = dataclasses.field(default=128, metadata={"check": positive})  # per step
    accumulate_grad_batches: int = dataclasses.field(default=1, metadata={"check": positive})
    optimizer: Literal["adamw", "lamb"] = "adamw"
    lr: float = dataclasses.field(default=4e-3, metadata={"check": positive})  # used as given, no batch scaling
    weight_decay: float = dataclasses.field(default=0.05, metadata={"check": non_negative})  # not on 1-d params
    warmup_epochs: float = dataclasses.field(default=5.0, metadata={"check": non_negative})
    warmup_lr: float = dataclasses.field(default=1e-6, metadata={"check": non_negative})  # lr at step 0
    min_lr: float = dataclasses.field(default=1e-5, metadata={"check": non_negative})  # end of the cosine
    label_smoothing: float = dataclasses.field(default=0.1, metadata={"check": probability})
    mixup: float = dataclasses.field(default=0.8, metadata={"check": non_negative})  # Beta alpha; 0: off
    cutmix: float = dataclasses.field(default=1.0, metadata={"check": non_negative})  # Beta alpha; 0: off
    mixup_switch_prob: float = dataclasses.field(default=0.5, metadata={"check": probability})
    # Stochastic depth and head dropout; null keeps the architecture's own values.
    drop_path_rate: float | None = dataclasses.field(default=None, metadata={"check": probability})
    head_dropout: float | None = dataclasses.field(default=None, metadata={"check": probability})
    grad_clip: float | None = dataclasses.field(default=None, metadata={"check": positive})  # max grad norm
    ema: bool = False  # evaluate an exponential moving average of the weights
    ema_decay: float = dataclasses.field(default=0.9999, metadata={"check": probability})
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    channels_last: bool = False
    compile: bool = False  # torch.compile the model
    seed: int = 42
    augment: AugmentConfig = AugmentConfig()

    def to_dict(self) -> dict:
        return to_plain(self)


PAPER_AUGMENT = AugmentConfig(rand_augment="rand-m9-mstd0.5-inc1", random_erasing=0.25, color_jitter=0.4,
                              hflip=0.5, scale=(0.08, 1.0), interpolation="random", crop_pct=1.0)
PAPER_TOTAL_BATCH = 4096

# Family -> (optimizer, lr, warmup epochs) from the official scripts.
PAPER_OPTIM = {
    "identityformer": ("adamw", 4e-3, 5), "randformer": ("adamw", 4e-3, 5), "poolformerv2": ("adamw", 4e-3, 5),
    "convformer": ("adamw", 4e-3, 20), "caformer": ("lamb", 8e-3, 20),
}

SMALL = TrainConfig(
    epochs=30, batch_size=128, optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_epochs=1.0,
    warmup_lr=1e-5, min_lr=1e-5, label_smoothing=0.1, mixup=0.0, cutmix=0.0,
    drop_path_rate=None, head_dropout=None,  # keep the architecture's (a searched value survives)
    grad_clip=None, augment=AugmentConfig(rand_augment=None, random_erasing=0.0,
                                                            color_jitter=None, hflip=0.5, crop_padding=4),
)

RECIPES = ("paper", "small")


def paper_recipe(preset: str | None, batch_size: int = 128) -> TrainConfig:
    """The official ImageNet recipe for ``preset`` (family and size set optimizer, lr, warmup,
    drop path and head dropout). Other architectures get the IdentityFormer/PoolFormerV2 recipe."""
    from ..presets import FAMILIES
    family_name, _, size = (preset or "").partition("_")
    family = FAMILIES.get(family_name)
    optimizer, lr, warmup = PAPER_OPTIM.get(family_name, PAPER_OPTIM["poolformerv2"])
    return TrainConfig(
        epochs=300, batch_size=batch_size, accumulate_grad_batches=max(1, PAPER_TOTAL_BATCH // batch_size),
        optimizer=optimizer, lr=lr, weight_decay=0.05, warmup_epochs=warmup, warmup_lr=1e-6, min_lr=1e-5,
        label_smoothing=0.1, mixup=0.8, cutmix=1.0, mixup_switch_prob=0.5,
        drop_path_rate=family.drop_path.get(size, 0.1) if family else 0.1,
        head_dropout=family.head_dropout.get(size, 0.0) if family else 0.0,
        grad_clip=None, ema=False, augment=PAPER_AUGMENT)


def resolve_recipe(name: str, preset: str | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A named recipe with ``overrides`` (dotted keys: ``augment.rand_augment``) applied and validated."""
    if name == "paper":
        base = paper_recipe(preset)
    elif name == "small":
        base = SMALL
    else:
        raise ConfigError("recipe", f"{name!r} is not one of {', '.join(RECIPES)}")
    if not overrides:
        return base
    raw = base.to_dict()
    for key, value in overrides.items():
        node, parts = raw, key.split(".")
        for depth, part in enumerate(parts):
            path = ".".join(parts[:depth + 1])
            if not isinstance(node, dict) or part not in node:
                allowed = ", ".join(node) if isinstance(node, dict) else "none"
                raise ConfigError(path, f"unknown recipe field; allowed: {allowed}")
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return parse_dataclass(TrainConfig, raw, "")
