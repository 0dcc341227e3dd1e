"""Token-mixer registry: ``identity``, ``pooling``, ``random``, ``sepconv``, ``attention``.

Adding a mixer is one class plus ``@MIXERS.register(name)``. The contract, which blocks rely on
and never special-case:

- ``Params``: a frozen dataclass of the mixer's own config fields (with defaults);
- ``layout``: the tensor layout ``forward`` takes and returns — ``"nhwc"`` ``[B, H, W, C]`` (the
  model's home layout), ``"nchw"`` ``[B, C, H, W]`` or ``"tokens"`` ``[B, H*W, C]``; the block
  converts with free views (see ``to_layout``);
- ``__init__(dim, grid, params)``: ``grid`` is the stage's (H, W) at the configured image size;
- ``validate(dim, grid, params) -> (field, message) | None``: config errors that need the stage;
- ``count(dim, grid, params) -> Count``: trainable/frozen params and MACs per block.

Parameter names match timm's ``metaformer.py`` so its checkpoints load.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import odd_positive, positive
from .activations import ActSpec, build_activation
from .count import Count, conv2d, linear
from .pointwise import PointwiseLinear
from .registry import NoParams, Registry, Spec

MIXERS: Registry = Registry("token mixer")


class MixerSpec(Spec):
    registry_ = MIXERS


def build_mixer(spec: MixerSpec, dim: int, grid: tuple[int, int]) -> nn.Module:
    return spec.cls(dim, grid, spec.params)


def to_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """NHWC -> the mixer's layout, as a view (no copy)."""
    if layout == "nhwc":
        return x
    if layout == "nchw":
        return x.permute(0, 3, 1, 2)
    if layout == "tokens":
        return x.flatten(1, 2)
    raise ValueError(f"unknown layout {layout!r}")


def from_layout(y: torch.Tensor, layout: str, shape: torch.Size) -> torch.Tensor:
    """The mixer's layout -> NHWC with the block input's ``shape``."""
    if layout == "nhwc":
        return y
    if layout == "nchw":
        return y.permute(0, 2, 3, 1)
    if layout == "tokens":
        return y.reshape(shape)
    raise ValueError(f"unknown layout {layout!r}")


class TokenMixer(nn.Module):
    Params = NoParams
    layout = "nhwc"

    @staticmethod
    def validate(dim: int, grid: tuple[int, int], params) -> tuple[str, str] | None:
        return None

    @staticmethod
    def count(dim: int, grid: tuple[int, int], params) -> Count:
        return Count()


@MIXERS.register("identity")
class IdentityMixer(TokenMixer):
    """IdentityFormer: no token mixing at all."""

    def __init__(self, dim: int, grid: tuple[int, int], params: NoParams = NoParams()):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@MIXERS.register("pooling")
class Pooling(TokenMixer):
    """PoolFormer: average pooling minus the input (the residual adds the input back)."""

    layout = "nchw"

    @dataclasses.dataclass(frozen=True)
    class Params:
        pool_size: int = dataclasses.field(default=3, metadata={"check": odd_positive})

    def __init__(self, dim: int, grid: tuple[int, int], params: Params = Params()):
        super().__init__()
        self.pool = nn.AvgPool2d(params.pool_size, 1, params.pool_size // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x).sub_(x)  # in place on pool's fresh output (its backward does not need it)


@MIXERS.register("random")
class RandomMixing(TokenMixer):
    """RandFormer: a frozen ``softmax(rand(N, N))`` mixes all N tokens of the stage.

    N is the stage's token count at the configured image size, so any size works (the official
    code hard-codes 196 and 49, i.e. 224 px only). The matrix is a frozen Parameter so it is saved
    under ``token_mixer.random_matrix``, the official key.
    """

    layout = "tokens"

    def __init__(self, dim: int, grid: tuple[int, int], params: NoParams = NoParams()):
        super().__init__()
        n = grid[0] * grid[1]
        self.random_matrix = nn.Parameter(torch.softmax(torch.rand(n, n), dim=-1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.random_matrix.shape[0]:
            raise ValueError(
                f"random mixing was built for {self.random_matrix.shape[0]} tokens but got {x.shape[1]}: "
                "build the model with the img_size you run it at")
        return torch.matmul(self.random_matrix, x)

    @staticmethod
    def count(dim: int, grid: tuple[int, int], params) -> Count:
        n = grid[0] * grid[1]
        return Count(0, n * n, n * n * dim)


@MIXERS.register("sepconv")
class SepConv(TokenMixer):
    """ConvFormer: inverted separable conv, pw-linear -> act -> depthwise kxk -> pw-linear."""

    @dataclasses.dataclass(frozen=True)
    class Params:
        expansion_ratio: float = dataclasses.field(default=2.0, metadata={"check": positive})
        kernel_size: int = dataclasses.field(default=7, metadata={"check": odd_positive})
        act: ActSpec = ActSpec("starrelu", ActSpec.registry_.get("starrelu").Params())
        bias: bool = False

    def __init__(self, dim: int, grid: tuple[int, int], params: Params = Params()):
        super().__init__()
        mid = int(params.expansion_ratio * dim)
        k = params.kernel_size
        self.pwconv1 = PointwiseLinear(dim, mid, bias=params.bias)
        self.act1 = build_activation(params.act)
        self.dwconv = nn.Conv2d(mid, mid, k, padding=k // 2, groups=mid, bias=params.bias)
        self.pwconv2 = PointwiseLinear(mid, dim, bias=params.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.pwconv1(x))
        # The depthwise conv runs on a channels-last view: no copy in either direction.
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(x)

    @staticmethod
    def count(dim: int, grid: tuple[int, int], params: Params) -> Count:
        n, mid = grid[0] * grid[1], int(params.expansion_ratio * dim)
        act_trainable, act_frozen = params.act.cls.param_count(params.act.params)
        return (linear(dim, mid, n, params.bias) + conv2d(mid, mid, params.kernel_size, n, params.bias, mid)
                + linear(mid, dim, n, params.bias) + Count(act_trainable, act_frozen, 0))


@MIXERS.register("attention")
class Attention(TokenMixer):
    """Global multi-head self-attention, no positional embedding (CAFormer stages 3-4)."""

    layout = "tokens"

    @dataclasses.dataclass(frozen=True)
    class Params:
        head_dim: int = dataclasses.field(default=32, metadata={"check": positive})
        qkv_bias: bool = False
        proj_bias: bool = False

    def __init__(self, dim: int, grid: tuple[int, int], params: Params = Params()):
        super().__init__()
        self.head_dim = params.head_dim
        self.num_heads = dim // params.head_dim
        self.qkv = nn.Linear(dim, 3 * dim, bias=params.qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=params.proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))

    @staticmethod
    def validate(dim: int, grid: tuple[int, int], params: Params) -> tuple[str, str] | None:
        if dim % params.head_dim:
            divisors = [d for d in (8, 16, 32, 64, 128) if dim % d == 0]
            return ("head_dim", f"the stage dim {dim} is not divisible by head_dim {params.head_dim}; "
                                f"use a dim that is a multiple of it, or head_dim in {divisors or [1]}")
        return None

    @staticmethod
    def count(dim: int, grid: tuple[int, int], params: Params) -> Count:
        n = grid[0] * grid[1]
        # q @ k^T and attn @ v: 2 * N^2 * C multiply-accumulates.
        return (linear(dim, 3 * dim, n, params.qkv_bias) + linear(dim, dim, n, params.proj_bias)
                + Count(0, 0, 2 * n * n * dim))
