"""timm interop: strict state-dict loading and equal logits for the 13 presets timm shares;
identityformer/randformer in timm's registry; the official key scheme; offline pretrained errors."""
from __future__ import annotations

import re

import pytest
import timm
import torch

import mfsearch
from mfsearch.errors import PretrainedUnavailable
from mfsearch.interop import TIMM_IMPLEMENTATION, convert_official_state_dict
from mfsearch.presets import FAMILIES

SHARED = [f"{f.name}_{s}" for f in FAMILIES.values() if f.in_timm for s in f.sizes]


def test_thirteen_presets_shared_with_timm():
    assert len(SHARED) == 13
    assert all(name in timm.list_models() for name in SHARED)


@pytest.mark.parametrize("name", SHARED)
def test_timm_state_dict_loads_strictly_and_logits_match(name):
    torch.manual_seed(0)
    reference = timm.create_model(name).eval()
    # Perturb the scales/norms away from their init so the check covers them too.
    with torch.no_grad():
        for p in reference.parameters():
            if p.ndim <= 1:
                p.add_(torch.randn_like(p) * 0.1)
    model = mfsearch.create_model(name, **TIMM_IMPLEMENTATION).eval()
    result = model.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        diff = (model(x) - reference(x)).abs().max().item()
    assert diff <= 1e-4


def test_paper_head_eps_differs_only_slightly_from_timm():
    """Presets keep the official MLP-head LayerNorm eps (1e-5); timm uses 1e-6."""
    torch.manual_seed(0)
    reference = timm.create_model("caformer_s18").eval()
    model = mfsearch.create_model("caformer_s18").eval()
    assert model.head.fc.norm.eps == 1e-5
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max().item() < 1e-2


@pytest.mark.parametrize("name", ["identityformer_s12", "randformer_s12"])
def test_registered_in_timm(name):
    model = timm.create_model(name, num_classes=10, drop_path_rate=0.1)
    assert isinstance(model, mfsearch.model.MetaFormer)
    assert model.num_classes == 10
    assert timm.get_pretrained_cfg(name).url.endswith(f"/{name}.pth")
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 10)


def _to_official_keys(state: dict) -> dict:
    """Our (timm) keys -> sail-sg/metaformer's, per the published mapping table."""
    out = {}
    for k, v in state.items():
        k = k.replace("stem.conv", "downsample_layers.0.conv").replace("stem.norm", "downsample_layers.0.post_norm")
        k = re.sub(r"stages\.(\d+)\.downsample\.norm", r"downsample_layers.\1.pre_norm", k)
        k = re.sub(r"stages\.(\d+)\.downsample\.conv", r"downsample_layers.\1.conv", k)
        k = re.sub(r"stages\.(\d+)\.blocks\.(\d+)", r"stages.\1.\2", k)
        k = k.replace("head.norm", "norm").replace("head.fc", "head")
        out[k] = v
    return out


@pytest.mark.parametrize("name", ["identityformer_s12", "randformer_s12"])
def test_official_checkpoint_keys_convert_with_timm_filter(name):
    source = mfsearch.create_model(name).eval()
    official = _to_official_keys(source.state_dict())
    assert "downsample_layers.0.post_norm.weight" in official and "stages.2.0.norm1.weight" in official
    target = mfsearch.create_model(name).eval()
    target.load_state_dict(convert_official_state_dict(official, target), strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key  # random matrices included


def test_pretrained_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match="could not download the published weights of caformer_s18"):
        mfsearch.create_model("caformer_s18", pretrained=True)


def test_pretrained_needs_a_preset():
    with pytest.raises(mfsearch.ConfigError, match="pretrained: published weights exist only for presets"):
        mfsearch.create_model(mfsearch.resolve_arch("caformer_s18", num_classes=10), pretrained=True)


def test_safetensors_roundtrip(tmp_path):
    from mfsearch.interop import save_weights
    model = mfsearch.create_model("randformer_s12", num_classes=10, img_size=64).eval()
    save_weights(model, tmp_path / "w.safetensors")
    (tmp_path / "arch.yaml").write_text(model.arch.to_yaml())
    again = mfsearch.create_model(str(tmp_path / "arch.yaml"), pretrained=tmp_path / "w.safetensors").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    with pytest.raises(mfsearch.MfsearchError, match="do not fit this architecture"):
        mfsearch.create_model("randformer_s12", num_classes=10, img_size=32, pretrained=tmp_path / "w.safetensors")
