"""Search-space parsing, candidates, constraints and proposers: pure, no Ray."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

import mfsearch
from mfsearch.search.candidates import (baseline_candidates, build_arch, check_candidate, dimensions, evaluate,
                                        grid_params, sample_params)
from mfsearch.search.proposers import GridProposer, OptunaProposer
from mfsearch.search.space import load_search_spec, parse_search_spec

ROOT = Path(__file__).resolve().parents[1]
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))


def spec_of(space: dict, **sections):
    return parse_search_spec({"space": space, **sections}, "test.yaml", {})


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_shipped_spaces_are_valid(path):
    spec = load_search_spec(path)
    num_classes, img_size = (1000, 224) if spec.data.dataset == "imagefolder" else (10, 32)
    for cand in baseline_candidates(spec, num_classes, img_size):
        evaluate(cand.arch)
    rng = random.Random(0)
    for _ in range(20):
        arch = build_arch(spec.space, sample_params(spec.space, rng), num_classes, img_size)
        why = check_candidate(spec, arch)
        assert why is None or not why.startswith("invalid"), why


def test_shared_choice_is_one_parameter():
    spec = spec_of({"shared": {"act": ["gelu", "relu"]}, "mlp_act": {"shared": "act"},
                    "stages": [{"depth": 1, "dim": 32}, {"depth": 1, "dim": 64}]})
    dims = dimensions(spec.space)
    assert "shared.act" in dims and not any(k.endswith("mlp_act") for k in dims)
    arch = build_arch(spec.space, {"shared.act": "relu", **{k: v.sample(random.Random(0)) for k, v in dims.items()
                                                           if k != "shared.act"}}, 10, 32)
    cfg = mfsearch.parse_arch(arch)
    assert [s.mlp_act.name for s in cfg.stages] == ["relu", "relu"]


def test_per_block_mixers_and_grid():
    spec = spec_of({"per_block_mixers": True, "stages": [{"depth": [1, 2], "dim": 32, "mixer": ["pooling", "identity"]}]},
                   search={"algorithm": "grid"})
    points = grid_params(spec.space)
    # depth (2) x block0 mixer (2) x block1 mixer (2)
    assert len(points) == 8
    archs = [mfsearch.parse_arch(build_arch(spec.space, p, 10, 32)) for p in points]
    assert {len(a.stages[0].block_mixers()) for a in archs} == {1, 2}
    assert len(GridProposer(spec.space, 0)) == 8


def test_constraints_reject_with_reason():
    space = {"stages": [{"depth": [1, 4], "dim": 32}]}
    small = build_arch(spec_of(space).space, {"stage0.depth": 1}, 10, 32)
    big = build_arch(spec_of(space).space, {"stage0.depth": 4}, 10, 32)
    limit = (evaluate(small)[1].macs + evaluate(big)[1].macs) / 2
    spec = spec_of(space, constraints={"max_macs": limit})
    assert check_candidate(spec, small) is None
    assert check_candidate(spec, big).startswith("MACs ") and "> max" in check_candidate(spec, big)
    bad_space = spec_of({"stages": [{"depth": 1, "dim": 40, "mixer": "attention"}]}).space
    bad_attention = build_arch(bad_space, sample_params(bad_space, random.Random(0)), 10, 32)
    assert check_candidate(spec, bad_attention).startswith("invalid: stages[0].mixer.head_dim")


def test_optuna_proposer_asks_and_learns():
    spec = spec_of({"stages": [{"depth": [1, 2], "dim": {"range": [16, 64], "step": 16},
                                "mixer": ["pooling", "sepconv"]}], "drop_path_rate": {"range": [0.0, 0.2]}},
                   objectives=[{"metric": "val/acc1", "mode": "max"}, {"metric": "cost/macs", "mode": "min"}],
                   search={"algorithm": "optuna-nsga2"})
    proposer = OptunaProposer(spec.space, 0, spec.objectives, "optuna-nsga2")
    for i in range(6):
        token, params = proposer.ask()
        assert params["stage0.dim"] in (16, 32, 48, 64) and 0 <= params["drop_path_rate"] <= 0.2
        proposer.tell(token, None if i == 0 else [float(i), float(10 - i)])
    states = [t.state.name for t in proposer.study.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 5


def test_baselines_follow_the_space_base_and_paper_families():
    spec = spec_of({"stages": [{"depth": [2, 3], "dim": 32}, {"depth": 1, "dim": 64}, {"depth": 2, "dim": 96},
                               {"depth": 1, "dim": 128}]})
    cands = {c.family: mfsearch.parse_arch(c.arch) for c in baseline_candidates(spec, 10, 32)}
    assert list(cands) == ["identityformer", "randformer", "poolformerv2", "convformer", "caformer"]
    ca = cands["caformer"]
    assert [s.depth for s in ca.stages] == [2, 1, 2, 1] and [s.mixer.name for s in ca.stages] == \
        ["sepconv", "sepconv", "attention", "attention"]
    assert ca.head.type == "mlp" and cands["identityformer"].stages[0].norm.name == "groupnorm1"
    assert [s.res_scale_init for s in ca.stages] == [None, None, 1.0, 1.0]
