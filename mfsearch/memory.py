"""Refuse models and image sizes that cannot fit in memory, before anything is allocated.

Why: an absurd ``dim`` or ``img_size`` otherwise fails deep inside torch or PIL (a 588 GB
allocation, a ``MemoryError``), after the MLflow run exists, with a traceback.

Rule: from the analytic cost model (``cost.py``, no weights allocated) we compute a *lower bound*
of the memory training needs, and refuse a config when that bound exceeds the memory of the
device it would train on: the GPU's memory when there is one, else this machine's RAM (its
physical memory, or the cgroup limit when lower). A lower bound never refuses a config that
could fit; it only turns hopeless ones into one line naming the field:

- weights and training state: 16 bytes per trainable parameter (fp32 weights, gradients and the
  two AdamW/LAMB moments), 4 more with EMA, 4 per frozen parameter -> named on the part with
  the most parameters (``stages[i].dim``, or ``num_classes`` for the head);
- one batch: the fp32 input (3 x img_size² per image) plus, for every block, the two tensors
  backward must keep at the least (the block input, dim per token, and the MLP hidden layer,
  mlp_ratio x dim per token), 4 bytes an element (2 under 16-bit mixed precision) -> named on
  ``img_size``.

``create_model`` checks the weights alone (4 bytes per parameter) against the RAM.
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import ArchConfig
from .cost import ModelCost, count_config
from .errors import ConfigError

CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def host_memory() -> int | None:
    """Bytes of RAM this process may use (physical RAM or the cgroup limit); None when unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no check rather than a guess
        return None
    for path in CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max": no limit
            total = min(total, int(text))
    return total


def device_memory() -> tuple[int | None, str]:
    """(bytes, description) of the memory training would run in: the first GPU's, else the RAM."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "the GPU's"
    return host_memory(), "this machine's"


def human(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} bytes"


def batch_bytes(cfg: ArchConfig, batch_size: int, precision: str = "32") -> int:
    """Lower bound of one training batch's input and kept activations (see the module doc)."""
    element = 4 if precision == "32" else 2
    per_image = 4 * cfg.in_chans * cfg.img_size ** 2
    for stage, (h, w) in zip(cfg.stages, cfg.grids()):
        per_image += element * stage.depth * h * w * (stage.dim + int(stage.mlp_ratio * stage.dim))
    return batch_size * per_image


def check_training_fits(cfg: ArchConfig, batch_size: int, precision: str = "32", ema: bool = False,
                        weights: tuple[int, int] | None = None) -> None:
    """Raise ``ConfigError`` naming the field when training ``cfg`` certainly cannot fit.

    ``weights`` (trainable, frozen) replaces ``cfg``'s own counts for the state term: a supernet
    keeps weights and optimizer state for all its members while one batch runs ``cfg``."""
    available, where = device_memory()
    if available is None:
        return
    cost = count_config(cfg)
    trainable, frozen = weights or (cost.params, cost.frozen_params)
    state = trainable * (20 if ema else 16) + frozen * 4
    batch = batch_bytes(cfg, batch_size, precision)
    if state + batch <= available:
        return
    if state >= batch:
        _refuse_params(cfg, cost, state, "for its weights, gradients and optimizer state", available, where)
    raise ConfigError("img_size", f"{cfg.img_size} px at batch size {batch_size} needs at least {human(batch)} "
                                  f"for one batch's input and activations, more than {where} {human(available)} "
                                  f"of memory; lower the image size or the batch size")


def check_model_fits(cfg: ArchConfig) -> None:
    """Raise ``ConfigError`` naming the field when ``cfg``'s fp32 weights alone exceed the RAM."""
    available = host_memory()
    cost = count_config(cfg)
    weights = 4 * (cost.params + cost.frozen_params)
    if available is not None and weights > available:
        _refuse_params(cfg, cost, weights, "for its fp32 weights", available, "this machine's")


def _refuse_params(cfg: ArchConfig, cost: ModelCost, needed: int, what: str, available: int, where: str) -> None:
    part = max(cost.parts, key=lambda p: p.params + p.frozen_params)
    total = f"{cost.params + cost.frozen_params:.3g} parameters"
    if part.frozen_params > part.params:  # RandFormer's frozen token-mixing matrices: tokens² each
        raise ConfigError("img_size", f"{cfg.img_size} px gives {part.name}'s random token-mixing matrices "
                                      f"{part.frozen_params:.3g} frozen parameters: the model needs at least "
                                      f"{human(needed)} {what}, more than {where} {human(available)} of memory")
    if part.name == "head":
        field, value = "num_classes", f"{cfg.num_classes}"
    else:
        i = 0 if part.name == "stem" else int(part.name[len("stage"):])
        field, value = f"stages[{i}].dim", f"{cfg.stages[i].dim} (depth {cfg.stages[i].depth})"
    raise ConfigError(field, f"{value} makes a model of {total} that needs at least {human(needed)} {what}, "
                             f"more than {where} {human(available)} of memory")
