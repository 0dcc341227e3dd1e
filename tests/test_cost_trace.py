"""The analytic cost model against the real modules: params by counting, MACs by tracing.

Runs on the meta device (no weights allocated). torch's FlopCounterMode counts 2 FLOPs per
multiply-accumulate of mm/bmm/conv/attention and nothing for norms, activations and pooling, which
is exactly the paper's convention.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mfsearch
from mfsearch import ACTIVATIONS, MIXERS
from mfsearch.cost import count_config


def traced(cfg):
    with torch.device("meta"):
        model = mfsearch.create_model(cfg)
        x = torch.empty(2, cfg.in_chans, cfg.img_size, cfg.img_size)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return trainable, frozen, counter.get_total_flops() // 2 // 2  # per image, MACs


def tiny(mixer, **fields):
    raw = {"num_classes": 10, "img_size": 32, "depth": [1, 2], "dim": [32, 64], "mixer": mixer,
           "stem": {"kernel_size": 3, "stride": 2, "padding": 1}, **fields}
    return mfsearch.parse_arch(raw)


@pytest.mark.parametrize("mixer", MIXERS.names())
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_every_mixer_cost_matches_trace(mixer, head):
    cfg = tiny(mixer, head={"type": head}, res_scale_init=[None, 1.0], layer_scale_init=1e-5, mlp_ratio=3)
    cost = count_config(cfg)
    assert (cost.params, cost.frozen_params, cost.macs) == traced(cfg)


@pytest.mark.parametrize("act", ACTIVATIONS.names())
def test_every_activation_cost_matches_trace(act):
    cfg = tiny("sepconv", mlp_act=act)
    cost = count_config(cfg)
    assert (cost.params, cost.frozen_params, cost.macs) == traced(cfg)


@pytest.mark.parametrize("preset", ["caformer_s18", "randformer_s12", "poolformerv2_s12", "convformer_s18"])
def test_presets_cost_matches_trace(preset):
    cfg = mfsearch.resolve_arch(preset)
    cost = count_config(cfg)
    assert (cost.params, cost.frozen_params, cost.macs) == traced(cfg)


def test_mixer_params_and_per_block_cost_matches_trace():
    cfg = mfsearch.parse_arch({
        "num_classes": 5, "img_size": 48, "mlp_bias": True,
        "stages": [{"depth": 2, "dim": 24, "mixer": [{"name": "sepconv", "kernel_size": 3, "expansion_ratio": 1.5},
                                                      {"name": "pooling", "pool_size": 5}]},
                   {"depth": 3, "dim": 48, "mixer": ["random", {"name": "attention", "head_dim": 16}, "identity"]}]})
    cost = count_config(cfg)
    assert (cost.params, cost.frozen_params, cost.macs) == traced(cfg)
