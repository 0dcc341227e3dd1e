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
        if torch.is_grad_enabled():
            return _StarReLUFunction.apply(x, self.scale, self.bias)
        # Inference and export: one allocation, then in place (allocating each intermediate made this
        # 3x slower on CPU). Scalars follow x's dtype (no silent upcast under bf16).
        r = F.relu(x)
        return r.mul_(r).mul_(self.scale.to(x.dtype)).add_(self.bias.to(x.dtype))

    @staticmethod
    def param_count(params: Params) -> tuple[int, int]:
        return (2, 0) if params.learnable else (0, 2)


class _StarReLUFunction(torch.autograd.Function):
    """StarReLU with a hand-written backward.

    Why: StarReLU runs after every MLP fc1 and SepConv pwconv1 on the widest tensors of the model;
    autograd's composition (relu, square, mul, add and their backwards) makes ~8 full passes over
    them. Saving only r = relu(x) and using d/dx = 2 s r (r is 0 where x < 0) makes it ~4.
    """

    @staticmethod
    def forward(ctx, x, scale, bias):
        r = F.relu(x)
        s = scale.to(x.dtype)
        ctx.save_for_backward(r, s)
        ctx.param_dtype = scale.dtype
        return (r * r).mul_(s).add_(bias.to(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        r, scale = ctx.saved_tensors
        g_r = grad * r
        # Scalar gradients are reduced in float32 even under bf16/fp16 activations.
        grad_scale = (g_r * r).sum(dtype=torch.float32).reshape(1).to(ctx.param_dtype) \
            if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(dtype=torch.float32).reshape(1).to(ctx.param_dtype) \
            if ctx.needs_input_grad[2] else None
        grad_x = g_r.mul_(2 * scale) if ctx.needs_input_grad[0] else None
        return grad_x, grad_scale, grad_bias


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
