"""Activation registry: ``starrelu``, ``squared_relu``, ``relu``, ``gelu``, ``silu``.

Each activation is one class with a ``Params`` dataclass, built as ``cls(params)``, and a
``param_count(params) -> (trainable, frozen)`` for the cost model. Activations cost no MACs.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from .registry import NoParams, Registry, Spec

ACTIVATIONS: Registry = Registry("activation")


class ActSpec(Spec):
    registry_ = ACTIVATIONS


def build_activation(spec: ActSpec) -> nn.Module:
    return spec.cls(spec.params)


class _ParamFree(nn.Module):
    Params = NoParams

    def __init__(self, params: NoParams = NoParams()):
        super().__init__()

    @staticmethod
    def param_count(params) -> tuple[int, int]:
        return 0, 0


@ACTIVATIONS.register("starrelu")
class StarReLU(nn.Module):
    """StarReLU(x) = s * relu(x)**2 + b with scalar s, b (MetaFormer Baselines, Yu et al.).

    The paper's models start at s=1, b=0 (official code); s=0.8944, b=-0.4472 normalises
    relu(x)**2 for x ~ N(0, 1). Parameter names match timm (`scale`, `bias`).
    """

    @dataclasses.dataclass(frozen=True)
    class Params:
        scale: float = 1.0
        bias: float = 0.0
        learnable: bool = True

    def __init__(self, params: Params = Params()):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), params.scale), requires_grad=params.learnable)
        self.bias = nn.Parameter(torch.full((1,), params.bias), requires_grad=params.learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).square() + self.bias

    @staticmethod
    def param_count(params: Params) -> tuple[int, int]:
        return (2, 0) if params.learnable else (0, 2)


@ACTIVATIONS.register("squared_relu")
class SquaredReLU(_ParamFree):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


@ACTIVATIONS.register("relu")
class ReLU(_ParamFree):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


@ACTIVATIONS.register("gelu")
class GELU(_ParamFree):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


@ACTIVATIONS.register("silu")
class SiLU(_ParamFree):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)
