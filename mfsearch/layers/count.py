"""Analytic parameter/MAC counts, by the paper's convention.

MACs count conv, linear, matmul and einsum multiply-accumulates only; norms, activations, pooling,
softmax, biases and residual/scale ops are free. This reproduces every published Params/MACs value
of MetaFormer Baselines (checked in tests against the published table and against a traced count
of the real modules).
"""
from __future__ import annotations

from typing import NamedTuple


class Count(NamedTuple):
    params: int = 0   # trainable
    frozen: int = 0   # present in the state dict but requires_grad=False
    macs: int = 0

    def __add__(self, other: "Count") -> "Count":  # type: ignore[override]
        return Count(self.params + other.params, self.frozen + other.frozen, self.macs + other.macs)

    def times(self, n: int) -> "Count":
        return Count(self.params * n, self.frozen * n, self.macs * n)


def linear(c_in: int, c_out: int, tokens: int, bias: bool) -> Count:
    return Count(c_in * c_out + (c_out if bias else 0), 0, c_in * c_out * tokens)


def conv2d(c_in: int, c_out: int, kernel: int, out_tokens: int, bias: bool, groups: int = 1) -> Count:
    weights = c_out * (c_in // groups) * kernel * kernel
    return Count(weights + (c_out if bias else 0), 0, weights * out_tokens)


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1
