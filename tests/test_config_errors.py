"""Every config error names its field and what is allowed."""
from __future__ import annotations

import pytest

import mfsearch
from mfsearch.errors import ConfigError

BASE = {"depth": [1, 1], "dim": [32, 64], "img_size": 64, "num_classes": 10}

CASES = [
    ({"mixer": ["sepconv", "atention"]}, "stages[1].mixer", "'atention' is not one of identity, pooling, random, sepconv, attention"),
    ({"depth": [1, "two"]}, "stages[1].depth", "expected an int, got a string 'two'"),
    ({"depth": [1, 0]}, "stages[1].depth", "must be > 0"),
    ({"dim": [32, 64, 128]}, "dim", "has 3 values but there are 2 stages"),
    ({"colour": "red"}, "colour", "unknown field; allowed: stages, in_chans"),
    ({"mixer": {"name": "sepconv", "kernel": 5}}, "stages[0].mixer.kernel", "unknown field; allowed: expansion_ratio, kernel_size, act, bias"),
    ({"mixer": {"name": "sepconv", "kernel_size": 4}}, "stages[0].mixer.kernel_size", "must be a positive odd int"),
    ({"mixer": {"name": "pooling", "pool_size": "big"}}, "stages[0].mixer.pool_size", "expected an int"),
    ({"mixer": {"name": "attention", "head_dim": 48}}, "stages[0].mixer.head_dim", "not divisible by head_dim 48"),
    ({"mixer": {"kernel_size": 3}}, "stages[0].mixer.name", "required; one of identity"),
    ({"mlp_act": "swish"}, "stages[0].mlp_act", "'swish' is not one of starrelu, squared_relu, relu, gelu, silu"),
    ({"mlp_act": {"name": "starrelu", "scale": "x"}}, "stages[0].mlp_act.scale", "expected a number"),
    ({"norm": "batchnorm"}, "stages[0].norm", "'batchnorm' is not one of layernorm, groupnorm1"),
    ({"mlp_ratio": -1}, "stages[0].mlp_ratio", "must be > 0"),
    ({"mlp_bias": "yes"}, "stages[0].mlp_bias", "expected true or false"),
    ({"head": {"type": "conv"}}, "head.type", "'conv' is not one of linear, mlp"),
    ({"head": {"dropout": 1.5}}, "head.dropout", "must be in [0, 1)"),
    ({"stem": {"kernel_size": 7, "strid": 4}}, "stem.strid", "unknown field; allowed: kernel_size, stride, padding"),
    ({"drop_path_rate": -0.1}, "drop_path_rate", "must be in [0, 1)"),
    ({"img_size": 2}, "img_size", "too small"),
    ({"res_scale_init": "one"}, "stages[0].res_scale_init", "expected a number"),
    ({"num_classes": 2.5}, "num_classes", "expected an int"),
]


@pytest.mark.parametrize("change, path, message", CASES, ids=[c[1] for c in CASES])
def test_error_names_field(change, path, message):
    with pytest.raises(ConfigError) as info:
        mfsearch.parse_arch({**BASE, **change})
    assert info.value.path == path
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_per_block_mixer_list_must_match_depth():
    with pytest.raises(ConfigError, match=r"stages\[0\].mixer: lists 3 per-block mixers but the stage depth is 2"):
        mfsearch.parse_arch({"stages": [{"depth": 2, "dim": 32, "mixer": ["identity"] * 3}]})


def test_per_block_attention_error_names_block():
    with pytest.raises(ConfigError) as info:
        mfsearch.parse_arch({"img_size": 64, "stages": [
            {"depth": 2, "dim": 40, "mixer": ["identity", "attention"]}]})
    assert info.value.path == "stages[0].mixer[1].head_dim"


def test_missing_stages():
    with pytest.raises(ConfigError, match="stages: required"):
        mfsearch.parse_arch({"num_classes": 10})


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "arch.yaml"
    bad.write_text("depth: [2, 2]\ndim: [32, 64]\nmixer: [pooling, atention]\n")
    with pytest.raises(ConfigError) as info:
        mfsearch.create_model(str(bad))
    assert str(info.value).startswith(f"{bad}: stages[1].mixer: 'atention' is not one of")
    broken = tmp_path / "broken.yaml"
    broken.write_text("depth: [2, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        mfsearch.create_model(str(broken))
    with pytest.raises(ConfigError, match="architecture file not found"):
        mfsearch.create_model(str(tmp_path / "missing.yaml"))


def test_unknown_override_names_field():
    with pytest.raises(ConfigError, match=r"^head.drop: unknown field; allowed: type, mlp_ratio"):
        mfsearch.create_model("caformer_s18", **{"head.drop": 0.1})


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="neither a preset nor a YAML file; presets: identityformer_s12"):
        mfsearch.create_model("caformer_s19")
