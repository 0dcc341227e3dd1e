"""Weights in and out: timm checkpoints, the official releases, and safetensors files.

- Presets that timm also has (``poolformerv2_*``, ``convformer_*``, ``caformer_*``) share timm's
  module names: ``model.load_state_dict(timm_model.state_dict(), strict=True)`` works as it is
  (1x1-conv weights are reshaped on load by a hook in ``MetaFormer``).
- ``identityformer_*``/``randformer_*`` use the same key scheme, so the official checkpoints
  convert with timm's ``checkpoint_filter_fn`` (see ``convert_official_state_dict``).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import MfsearchError, PretrainedUnavailable
from .presets import OFFICIAL_URL, preset_family

CLASSIFIER_PREFIXES = ("head.fc.",)

# Where timm's implementation departs from the official one: its MLP head's LayerNorm uses eps 1e-6
# (the official code, and our presets, use nn.LayerNorm's 1e-5). Pass these overrides to
# ``create_model`` to reproduce timm's logits to float precision.
TIMM_IMPLEMENTATION = {"head.norm_eps": 1e-6}


def convert_official_state_dict(state_dict: dict, model: nn.Module) -> dict:
    """Official sail-sg/metaformer keys (``downsample_layers.*``, ``stages.i.j.*``) -> ours."""
    from timm.models.metaformer import checkpoint_filter_fn
    return checkpoint_filter_fn(state_dict, model)


def published_state_dict(preset: str, sha256: str | None = None) -> dict:
    """Download the published ImageNet-1k weights of ``preset`` (1000 classes, 224 px), verified
    against their recorded SHA-256 (``weights_download``)."""
    from .weights_download import download_published

    family = preset_family(preset)
    url = OFFICIAL_URL.format(family=family.name, name=preset)
    try:
        path = download_published(preset, family.in_timm, url, sha256)
        if family.in_timm:
            from safetensors.torch import load_file
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except PretrainedUnavailable:
        raise
    except Exception as err:  # network, hub and file errors all mean the same thing to the user
        source = f"timm/{preset}.sail_in1k (Hugging Face Hub)" if family.in_timm else \
            OFFICIAL_URL.format(family=family.name, name=preset)
        raise PretrainedUnavailable(
            f"could not download the published weights of {preset} from {source}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. Check the network, or "
            "download them elsewhere and pass pretrained='weights.safetensors'") from None


def load_published_weights(model: nn.Module, preset: str, sha256: str | None = None) -> None:
    # timm's hub files and the official releases both go through timm's converter (a no-op for
    # keys already in timm's scheme), as timm's own pretrained loading does.
    state = convert_official_state_dict(published_state_dict(preset, sha256), _reference_model(preset))
    own = model.state_dict()
    # A different number of classes keeps the freshly initialised classifier (like timm).
    if own["head.fc.weight" if "head.fc.weight" in own else "head.fc.fc2.weight"].shape[0] != 1000:
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
        state.update({k: v for k, v in own.items() if k.startswith(CLASSIFIER_PREFIXES)})
    _load_checked(model, state, f"published weights of {preset}")


def _reference_model(preset: str) -> nn.Module:
    from .api import create_model
    with torch.device("meta"):
        return create_model(preset)


def load_weights_file(model: nn.Module, path: str | Path) -> None:
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise MfsearchError(f"pretrained: weights file not found: {path}")
    if path.suffix != ".safetensors":
        raise MfsearchError(f"pretrained: {path} is not a .safetensors file")
    _load_checked(model, load_file(str(path)), str(path))


def _load_checked(model: nn.Module, state: dict, source: str) -> None:
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and v.numel() != own[k].numel()]
    if wrong:
        raise MfsearchError(f"{source} do not fit this architecture (different img_size or widths?): "
                            + "; ".join(wrong[:3]) + (" ..." if len(wrong) > 3 else ""))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise MfsearchError(f"{source} do not match this architecture: missing {result.missing_keys[:5]}, "
                            f"unexpected {result.unexpected_keys[:5]}")


def save_weights(model: nn.Module, path: str | Path) -> None:
    from safetensors.torch import save_file
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))
