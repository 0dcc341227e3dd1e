"""The stage-wise MetaFormer, built from an ``ArchConfig``.

The block equation is written once::

    x = res_scale1(x) + layer_scale1(drop_path(token_mixer(norm1(x))))
    x = res_scale2(x) + layer_scale2(drop_path(mlp(norm2(x))))

Tensors stay channels-last ``[B, H, W, C]`` between blocks (as in the official code): norms, MLPs
and scales then act on the last dim, and every mixer layout is a free view of it. Module names match
timm's ``metaformer.py``; see ``mfsearch.interop`` for loading timm and official checkpoints.
"""
from __future__ import annotations

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn

from .config import ArchConfig, ConvSpec, HeadConfig, StageConfig
from .layers.activations import build_activation
from .layers.mixers import build_mixer, from_layout, to_layout
from .layers.norms import NormSpec, build_norm
from .layers.pointwise import Mlp


class Scale(nn.Module):
    """Learnable per-channel scale (ResScale / LayerScale); param name ``scale`` as in timm."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _scale(dim: int, init_value: float | None) -> nn.Module:
    return nn.Identity() if init_value is None else Scale(dim, init_value)


class Stem(nn.Module):
    """Strided conv, then a norm (post-norm)."""

    def __init__(self, in_chans: int, dim: int, conv: ConvSpec, norm: NormSpec):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, dim, conv.kernel_size, conv.stride, conv.padding)
        self.norm = build_norm(norm, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A channels-last input makes the conv's output an NHWC-contiguous tensor after the permute.
        x = self.conv(x.contiguous(memory_format=torch.channels_last))
        return self.norm(x.permute(0, 2, 3, 1))


class Downsampling(nn.Module):
    """A norm (pre-norm), then a strided conv; NHWC in and out."""

    def __init__(self, in_dim: int, out_dim: int, conv: ConvSpec, norm: NormSpec):
        super().__init__()
        self.norm = build_norm(norm, in_dim)
        self.conv = nn.Conv2d(in_dim, out_dim, conv.kernel_size, conv.stride, conv.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class MetaFormerBlock(nn.Module):
    def __init__(self, stage: StageConfig, mixer_spec, grid: tuple[int, int], drop_path: float):
        super().__init__()
        dim = stage.dim
        self.norm1 = build_norm(stage.norm, dim)
        self.token_mixer = build_mixer(mixer_spec, dim, grid)
        self.layout = self.token_mixer.layout
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale1 = _scale(dim, stage.layer_scale_init)
        self.res_scale1 = _scale(dim, stage.res_scale_init)

        self.norm2 = build_norm(stage.norm, dim)
        self.mlp = Mlp(dim, int(stage.mlp_ratio * dim), build_activation(stage.mlp_act), bias=stage.mlp_bias)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale2 = _scale(dim, stage.layer_scale_init)
        self.res_scale2 = _scale(dim, stage.res_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.token_mixer(to_layout(self.norm1(x), self.layout))
        mixed = from_layout(mixed, self.layout, x.shape)
        if not (self.training or torch.is_grad_enabled()):
            # Inference: add the skip into the branch's fresh output instead of allocating the sum
            # (allocation dominates elementwise ops on CPU). Training keeps out-of-place ops.
            x = self.layer_scale1(mixed).add_(self.res_scale1(x))
            return self.layer_scale2(self.mlp(self.norm2(x))).add_(self.res_scale2(x))
        x = self.res_scale1(x) + self.layer_scale1(self.drop_path1(mixed))
        return self.res_scale2(x) + self.layer_scale2(self.drop_path2(self.mlp(self.norm2(x))))


class MetaFormerStage(nn.Module):
    def __init__(self, index: int, in_dim: int, stage: StageConfig, cfg: ArchConfig,
                 grid: tuple[int, int], drop_paths: list[float]):
        super().__init__()
        self.downsample = (nn.Identity() if index == 0 else
                           Downsampling(in_dim, stage.dim, cfg.downsample, cfg.downsample_norm))
        self.blocks = nn.Sequential(*(
            MetaFormerBlock(stage, spec, grid, dp) for spec, dp in zip(stage.block_mixers(), drop_paths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MlpHead(nn.Module):
    def __init__(self, dim: int, num_classes: int, head: HeadConfig):
        super().__init__()
        hidden = int(head.mlp_ratio * dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = build_activation(head.act)
        self.norm = nn.LayerNorm(hidden, eps=head.norm_eps)
        self.drop = nn.Dropout(head.dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.norm(self.act(self.fc1(x)))))


class ClassifierHead(nn.Module):
    """Global average pool -> output norm -> linear or MLP classifier."""

    def __init__(self, dim: int, cfg: ArchConfig):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6) if cfg.output_norm else nn.Identity()
        if cfg.num_classes == 0:
            self.drop, self.fc = nn.Identity(), nn.Identity()
        elif cfg.head.type == "mlp":
            self.drop, self.fc = nn.Identity(), MlpHead(dim, cfg.num_classes, cfg.head)
        else:
            self.drop, self.fc = nn.Dropout(cfg.head.dropout), nn.Linear(dim, cfg.num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(x.mean(dim=(1, 2)))  # NHWC
        return x if pre_logits else self.fc(self.drop(x))


class MetaFormer(nn.Module):
    """A MetaFormer built from an ``ArchConfig`` (kept as ``.arch``)."""

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.arch = cfg
        self.num_classes = cfg.num_classes
        self.num_features = cfg.stages[-1].dim
        grids = cfg.grids()
        depths = [s.depth for s in cfg.stages]
        total = sum(depths)  # linspace(0, rate, total) in plain Python: works under torch.device("meta")
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stem = Stem(cfg.in_chans, cfg.stages[0].dim, cfg.stem, cfg.downsample_norm)
        stages, start, in_dim = [], 0, cfg.stages[0].dim
        for i, (stage, grid) in enumerate(zip(cfg.stages, grids)):
            stages.append(MetaFormerStage(i, in_dim, stage, cfg, grid, rates[start:start + stage.depth]))
            start, in_dim = start + stage.depth, stage.dim
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(self.num_features, cfg)
        self.apply(self._init_weights)
        self._register_load_state_dict_pre_hook(_accept_pointwise_convs, with_module=True)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B, C, H, W]`` -> last feature map ``[B, C', H', W']`` (timm's convention)."""
        return self.stages(self.stem(x)).permute(0, 3, 1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x.permute(0, 2, 3, 1), pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def no_weight_decay(self) -> set[str]:
        # Norms, biases, scales and StarReLU scalars: every parameter with ndim <= 1.
        return {name for name, p in self.named_parameters() if p.ndim <= 1}

    def get_classifier(self) -> nn.Module:
        return self.head.fc


def _accept_pointwise_convs(module, state_dict, prefix, *args) -> None:
    """Load 1x1-conv weights ``[out, in, 1, 1]`` (timm's NCHW layers) into our linears ``[out, in]``.

    timm runs non-attention stages in NCHW with 1x1 convs where we (like the official code) use
    ``nn.Linear`` on channels-last tensors; the weights are the same numbers. With this hook a timm
    ``state_dict()`` loads with ``strict=True`` as it is.
    """
    own = dict(module.named_parameters())
    for key, value in list(state_dict.items()):
        name = key[len(prefix):] if key.startswith(prefix) else None
        target = own.get(name) if name is not None else None
        if target is not None and target.ndim == 2 and value.ndim == 4 and value.shape[2:] == (1, 1):
            state_dict[key] = value.reshape(value.shape[:2])
