"""Norm registry. Norms run on the model's home layout, channels-last ``[B, H, W, C]``.

- ``layernorm``: LayerNorm over channels (the paper's ConvFormer/CAFormer block norm and every
  stem/downsampling norm);
- ``groupnorm1``: normalise over (H, W, C) with a per-channel affine, i.e. GroupNorm with one group
  (the paper's "modified LayerNorm" for IdentityFormer/RandFormer/PoolFormerV2).

The paper's norms have no bias (``bias: false``), eps 1e-6. Parameter names match timm.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import positive
from .registry import Registry, Spec

NORMS: Registry = Registry("norm")


class NormSpec(Spec):
    registry_ = NORMS


@dataclasses.dataclass(frozen=True)
class NormParams:
    eps: float = dataclasses.field(default=1e-6, metadata={"check": positive})
    bias: bool = False


def build_norm(spec: NormSpec, dim: int) -> nn.Module:
    return spec.cls(dim, spec.params)


class _AffineNorm(nn.Module):
    Params = NormParams

    def __init__(self, dim: int, params: NormParams = NormParams()):
        super().__init__()
        self.eps = params.eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if params.bias else None

    @staticmethod
    def param_count(dim: int, params: NormParams) -> int:
        return dim * (2 if params.bias else 1)


@NORMS.register("layernorm")
class ChannelLayerNorm(_AffineNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


@NORMS.register("groupnorm1")
class GroupNorm1(_AffineNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Statistics over everything but the batch; affine per channel. group_norm has a fused
        # channels-last CPU/GPU kernel, and the permutes are views (3x faster than layer_norm + mul).
        return F.group_norm(x.permute(0, 3, 1, 2), 1, self.weight, self.bias, self.eps).permute(0, 2, 3, 1)
