"""The paper's published ImageNet results (MetaFormer Baselines for Vision, sail-sg/metaformer README
@64c534a), at the precision they were printed. The project's own copy: nothing reads outside the
package at run time.

Columns: model, resolution, pretrain (``in1k`` or ``in21k_ft_in1k``), params in M (trainable; printed
with one decimal for IdentityFormer/RandFormer/PoolFormerV2, as integers for ConvFormer/CAFormer),
frozen params in M (RandFormer's random matrices, printed as "+0.2M"), MACs in G, top-1 %.
"""
from __future__ import annotations

from typing import NamedTuple


class PublishedResult(NamedTuple):
    model: str
    resolution: int
    pretrain: str
    params_m: float
    frozen_m: float
    macs_g: float
    top1: float


PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult('identityformer_s12', 224, 'in1k', 11.9, 0.0, 1.8, 74.6),
    PublishedResult('identityformer_s24', 224, 'in1k', 21.3, 0.0, 3.4, 78.2),
    PublishedResult('identityformer_s36', 224, 'in1k', 30.8, 0.0, 5.0, 79.3),
    PublishedResult('identityformer_m36', 224, 'in1k', 56.1, 0.0, 8.8, 80.0),
    PublishedResult('identityformer_m48', 224, 'in1k', 73.3, 0.0, 11.5, 80.4),
    PublishedResult('randformer_s12', 224, 'in1k', 11.9, 0.2, 1.9, 76.6),
    PublishedResult('randformer_s24', 224, 'in1k', 21.3, 0.5, 3.5, 78.2),
    PublishedResult('randformer_s36', 224, 'in1k', 30.8, 0.7, 5.2, 79.5),
    PublishedResult('randformer_m36', 224, 'in1k', 56.1, 0.7, 9.0, 81.2),
    PublishedResult('randformer_m48', 224, 'in1k', 73.3, 0.9, 11.9, 81.4),
    PublishedResult('poolformerv2_s12', 224, 'in1k', 11.9, 0.0, 1.8, 78.0),
    PublishedResult('poolformerv2_s24', 224, 'in1k', 21.3, 0.0, 3.4, 80.7),
    PublishedResult('poolformerv2_s36', 224, 'in1k', 30.8, 0.0, 5.0, 81.6),
    PublishedResult('poolformerv2_m36', 224, 'in1k', 56.1, 0.0, 8.8, 82.2),
    PublishedResult('poolformerv2_m48', 224, 'in1k', 73.3, 0.0, 11.5, 82.6),
    PublishedResult('convformer_s18', 224, 'in1k', 27, 0.0, 3.9, 83.0),
    PublishedResult('convformer_s36', 224, 'in1k', 40, 0.0, 7.6, 84.1),
    PublishedResult('convformer_m36', 224, 'in1k', 57, 0.0, 12.8, 84.5),
    PublishedResult('convformer_b36', 224, 'in1k', 100, 0.0, 22.6, 84.8),
    PublishedResult('convformer_s18', 384, 'in1k', 27, 0.0, 11.6, 84.4),
    PublishedResult('convformer_s36', 384, 'in1k', 40, 0.0, 22.4, 85.4),
    PublishedResult('convformer_m36', 384, 'in1k', 57, 0.0, 37.7, 85.6),
    PublishedResult('convformer_b36', 384, 'in1k', 100, 0.0, 66.5, 85.7),
    PublishedResult('convformer_s18', 224, 'in21k_ft_in1k', 27, 0.0, 3.9, 83.7),
    PublishedResult('convformer_s36', 224, 'in21k_ft_in1k', 40, 0.0, 7.6, 85.4),
    PublishedResult('convformer_m36', 224, 'in21k_ft_in1k', 57, 0.0, 12.8, 86.1),
    PublishedResult('convformer_b36', 224, 'in21k_ft_in1k', 100, 0.0, 22.6, 87.0),
    PublishedResult('convformer_s18', 384, 'in21k_ft_in1k', 27, 0.0, 11.6, 85.0),
    PublishedResult('convformer_s36', 384, 'in21k_ft_in1k', 40, 0.0, 22.4, 86.4),
    PublishedResult('convformer_m36', 384, 'in21k_ft_in1k', 57, 0.0, 37.7, 86.9),
    PublishedResult('convformer_b36', 384, 'in21k_ft_in1k', 100, 0.0, 66.5, 87.6),
    PublishedResult('caformer_s18', 224, 'in1k', 26, 0.0, 4.1, 83.6),
    PublishedResult('caformer_s36', 224, 'in1k', 39, 0.0, 8.0, 84.5),
    PublishedResult('caformer_m36', 224, 'in1k', 56, 0.0, 13.2, 85.2),
    PublishedResult('caformer_b36', 224, 'in1k', 99, 0.0, 23.2, 85.5),
    PublishedResult('caformer_s18', 384, 'in1k', 26, 0.0, 13.4, 85.0),
    PublishedResult('caformer_s36', 384, 'in1k', 39, 0.0, 26.0, 85.7),
    PublishedResult('caformer_m36', 384, 'in1k', 56, 0.0, 42.0, 86.2),
    PublishedResult('caformer_b36', 384, 'in1k', 99, 0.0, 72.2, 86.4),
    PublishedResult('caformer_s18', 224, 'in21k_ft_in1k', 26, 0.0, 4.1, 84.1),
    PublishedResult('caformer_s36', 224, 'in21k_ft_in1k', 39, 0.0, 8.0, 85.8),
    PublishedResult('caformer_m36', 224, 'in21k_ft_in1k', 56, 0.0, 13.2, 86.6),
    PublishedResult('caformer_b36', 224, 'in21k_ft_in1k', 99, 0.0, 23.2, 87.4),
    PublishedResult('caformer_s18', 384, 'in21k_ft_in1k', 26, 0.0, 13.4, 85.4),
    PublishedResult('caformer_s36', 384, 'in21k_ft_in1k', 39, 0.0, 26.0, 86.9),
    PublishedResult('caformer_m36', 384, 'in21k_ft_in1k', 56, 0.0, 42.0, 87.5),
    PublishedResult('caformer_b36', 384, 'in21k_ft_in1k', 99, 0.0, 72.2, 88.1),
)


def published(model: str, resolution: int = 224, pretrain: str = "in1k") -> PublishedResult | None:
    for row in PUBLISHED:
        if (row.model, row.resolution, row.pretrain) == (model, resolution, pretrain):
            return row
    return None
