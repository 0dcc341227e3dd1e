"""Forward/backward over every registered mixer and activation, on tiny configs."""
from __future__ import annotations

import pytest
import torch

import mfsearch
from mfsearch import ACTIVATIONS, MIXERS, NORMS


def tiny(**fields):
    raw = {"num_classes": 7, "img_size": 32, "depth": [1, 2], "dim": [32, 64],
           "stem": {"kernel_size": 3, "stride": 2, "padding": 1}, "drop_path_rate": 0.1, **fields}
    return mfsearch.create_model(raw)


def check_trains(model, img_size=32, batch=2):
    torch.manual_seed(0)
    model.train()
    x = torch.randn(batch, 3, img_size, img_size)
    out = model(x)
    assert out.shape == (batch, model.num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, f"frozen {name} got a gradient"


@pytest.mark.parametrize("mixer", MIXERS.names())
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_every_mixer_forward_backward(mixer, head):
    # res/layer scales on, so their parameters are checked for gradients too.
    model = tiny(mixer=mixer, head={"type": head}, res_scale_init=1.0, layer_scale_init=1e-2)
    check_trains(model)


@pytest.mark.parametrize("act", ACTIVATIONS.names())
def test_every_activation_forward_backward(act):
    check_trains(tiny(mixer="sepconv", mlp_act=act, head={"type": "mlp", "act": act}))


@pytest.mark.parametrize("norm", NORMS.names())
def test_every_norm_forward_backward(norm):
    check_trains(tiny(mixer="pooling", norm={"name": norm, "bias": True}))


def test_random_mixing_is_frozen_row_stochastic():
    model = tiny(mixer="random")
    matrices = [m.random_matrix for m in model.modules() if hasattr(m, "random_matrix")]
    assert len(matrices) == 3
    for r in matrices:
        assert not r.requires_grad
        assert torch.allclose(r.sum(-1), torch.ones(r.shape[0]))
    check_trains(model)


@pytest.mark.parametrize("img_size", [32, 64, 224])
def test_randformer_at_any_declared_size(img_size):
    model = mfsearch.create_model("randformer_s12", num_classes=10, img_size=img_size).eval()
    grids = model.arch.grids()
    rm = model.stages[2].blocks[0].token_mixer.random_matrix
    assert rm.shape == (grids[2][0] ** 2,) * 2
    with torch.no_grad():
        out = model(torch.randn(1, 3, img_size, img_size))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_randformer_rejects_other_sizes_clearly():
    model = mfsearch.create_model("randformer_s12", num_classes=10, img_size=64).eval()
    with pytest.raises(ValueError, match="img_size"):
        model(torch.randn(1, 3, 32, 32))


def test_per_block_mixers():
    model = mfsearch.create_model({
        "num_classes": 3, "img_size": 32, "stem": {"kernel_size": 3, "stride": 2, "padding": 1},
        "stages": [{"depth": 3, "dim": 32, "mixer": ["sepconv", "pooling", "identity"]},
                   {"depth": 2, "dim": 64, "mixer": ["random", {"name": "attention", "head_dim": 16}]}]})
    kinds = [[type(b.token_mixer).__name__ for b in s.blocks] for s in model.stages]
    assert kinds == [["SepConv", "Pooling", "IdentityMixer"], ["RandomMixing", "Attention"]]
    assert model.stages[1].blocks[1].token_mixer.num_heads == 4
    check_trains(model)


def test_paper_structure_of_presets():
    ca = mfsearch.create_model("caformer_s18")
    mixers = [type(s.blocks[0].token_mixer).__name__ for s in ca.stages]
    assert mixers == ["SepConv", "SepConv", "Attention", "Attention"]
    assert [s.blocks[0].token_mixer.num_heads for s in ca.stages[2:]] == [10, 16]
    assert ca.stem.conv.bias is not None and ca.stages[0].blocks[0].mlp.fc1.bias is None
    assert ca.stages[0].blocks[0].norm1.bias is None and ca.head.norm.bias is not None
    assert isinstance(ca.stages[0].blocks[0].res_scale1, torch.nn.Identity)
    assert ca.stages[2].blocks[0].res_scale1.scale.shape == (320,)
    pool = mfsearch.create_model("poolformerv2_s12")
    assert type(pool.stages[0].blocks[0].norm1).__name__ == "GroupNorm1"
    assert isinstance(pool.head.fc, torch.nn.Linear)


def test_drop_path_rises_linearly_over_all_blocks():
    model = mfsearch.create_model("convformer_s18", drop_path_rate=0.2)
    rates = [getattr(b.drop_path1, "drop_prob", 0.0) for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and len(rates) == 18
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_overrides_and_yaml_roundtrip(tmp_path):
    cfg = mfsearch.resolve_arch("caformer_s18", num_classes=10, img_size=64, mlp_act="gelu",
                                **{"head.dropout": 0.2, "stages[3].mixer": "pooling"})
    assert cfg.num_classes == 10 and cfg.head.dropout == 0.2
    assert all(s.mlp_act.name == "gelu" for s in cfg.stages)
    assert cfg.stages[3].mixer.name == "pooling" and cfg.stages[2].mixer.name == "attention"
    path = tmp_path / "arch.yaml"
    path.write_text(cfg.to_yaml())
    assert mfsearch.resolve_arch(str(path)) == cfg
