"""Pointwise (per-token) linear layers on channels-last ``[B, H, W, C]`` tensors, and the MLP.

Why not plain ``nn.Linear``: on CPU, oneDNN's 1x1 convolution on the channels-last view of the same
tensor beats the GEMM behind ``F.linear`` by 10-25% (inference and training) on large token grids
(>= 28x28, the paper's first two stages at 224 px), and loses on small ones. Measured on the 2-core
dev machine with torch 2.14 (benchmarks/model_throughput.py). Parameters stay ``nn.Linear``'s,
so state dicts and everything else see a Linear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONV_MIN_TOKENS = 28 * 28


class PointwiseLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4 and x.is_cpu and x.shape[1] * x.shape[2] >= CONV_MIN_TOKENS:
            y = F.conv2d(x.permute(0, 3, 1, 2), self.weight[:, :, None, None], self.bias)
            return y.permute(0, 2, 3, 1)
        return F.linear(x, self.weight, self.bias)


class Mlp(nn.Module):
    """fc1 -> act -> dropout -> fc2 -> dropout; names as timm's ``Mlp`` (checkpoints load)."""

    def __init__(self, dim: int, hidden: int, act: nn.Module, bias: bool = False, drop: float = 0.0):
        super().__init__()
        self.fc1 = PointwiseLinear(dim, hidden, bias=bias)
        self.act = act
        self.drop1 = nn.Dropout(drop)
        self.fc2 = PointwiseLinear(hidden, dim, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
