"""The supernet against the plain model: every registered mixer, exact outputs, costs, sampling."""
from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mfsearch
from mfsearch import MIXERS
from mfsearch.cost import count_config
from mfsearch.errors import ConfigError
from mfsearch.model import MetaFormer
from mfsearch.oneshot.sampling import RULES, PathSampler
from mfsearch.oneshot.space import OneShotSpace
from mfsearch.oneshot.supernet import NotASubnetwork
from mfsearch.search.candidates import sample_params
from mfsearch.search.space import parse_search_spec

ALL_MIXERS = MIXERS.names()   # every registered mixer, so a new one is covered with no edit here


def space_spec(per_block: bool = False, constraints: dict | None = None, **stage_fields):
    """A 3-stage space in which every stage offers every registered mixer."""
    raw = {
        "data": {"dataset": "synthetic"},
        "space": {"fixed": {"stem": {"kernel_size": 3, "stride": 2, "padding": 1}},
                  "mixer": list(ALL_MIXERS), "per_block_mixers": per_block,
                  "stages": [{"depth": [1, 2], "dim": [16, 32], **stage_fields},
                             {"depth": [1, 2, 3], "dim": 64, "mlp_ratio": [2, 4]},
                             {"depth": 1, "dim": [32, 64]}]},
        "constraints": constraints or {},
        "search": {"algorithm": "one-shot"},
    }
    return parse_search_spec(raw, "test", {})


def oneshot_space(**kwargs) -> OneShotSpace:
    return OneShotSpace(space_spec(**kwargs), num_classes=10, img_size=32)


def members(space: OneShotSpace, n: int, seed: int = 0):
    rng, out = random.Random(seed), []
    while len(out) < n:
        member = space.member(sample_params(space.spec.space, rng))
        if not isinstance(member, str):
            out.append(member[0])
    return out


@pytest.fixture(scope="module")
def supernet_and_space():
    space = oneshot_space(per_block=True)
    torch.manual_seed(0)
    return space.build_supernet(), space


def test_every_registered_mixer_is_in_the_supernet(supernet_and_space):
    supernet, _ = supernet_and_space
    for stage in supernet.choices:
        assert [m.name for m in stage.mixers] == ALL_MIXERS
    # Each mixer with weights has its own in every block of every stage (named by its choice).
    for name in ALL_MIXERS:
        cfg = MetaFormer(mfsearch.parse_arch({"num_classes": 10, "img_size": 32, "depth": [1], "dim": [32],
                                              "mixer": name, "stem": {"kernel_size": 3, "stride": 2, "padding": 1}}))
        if any(".token_mixer." in k for k, _ in cfg.named_parameters()):
            for i, stage in enumerate(supernet.choices):
                for j in range(stage.max_depth):
                    assert any(k.startswith(f"stages/{i}/blocks/{j}/token_mixer/{name}/") for k in supernet.weights), \
                        (name, i, j)


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_a_member_computes_exactly_what_metaformer_computes(supernet_and_space, mixer):
    """Outputs equal bit for bit those of ``MetaFormer(cfg)`` holding the inherited weights, in eval and
    in train mode, for members using ``mixer`` with elastic depth, width, MLP ratio and per-block mixers."""
    supernet, space = supernet_and_space
    rng = random.Random(ALL_MIXERS.index(mixer))
    x = torch.randn(3, 3, 32, 32)
    checked = 0
    while checked < 3:
        params = sample_params(space.spec.space, rng)
        params["stage1.block0.mixer"] = mixer            # every member here uses the mixer under test
        member = space.member(params)
        if isinstance(member, str):
            continue
        cfg = member[0]
        model = MetaFormer(cfg)
        model.load_state_dict(supernet.subnet_state_dict(cfg), strict=True)
        for training in (False, True):
            supernet.train(training)
            model.train(training)
            with torch.no_grad():
                assert torch.equal(supernet.run(x, cfg), model(x)), (cfg, training)
        checked += 1


def test_gradients_reach_only_the_members_weights(supernet_and_space):
    supernet, space = supernet_and_space
    supernet.train()
    supernet.zero_grad()
    cfg = members(space, 1, seed=3)[0]
    supernet.run(torch.randn(2, 3, 32, 32), cfg).sum().backward()
    used = {k for k, p in supernet.weights.items() if p.grad is not None and p.grad.abs().sum() > 0}
    mixers = {str(m) for s in cfg.stages for m in s.block_mixers()}
    for key in used:
        parts = key.split("/")
        if "token_mixer" in parts:
            assert parts[parts.index("token_mixer") + 1] in mixers, key
        if parts[0] == "stages" and parts[2] == "blocks":
            assert int(parts[3]) < cfg.stages[int(parts[1])].depth, key   # elastic depth: the first d blocks
    supernet.zero_grad()


def test_a_members_analytic_cost_is_what_the_supernet_runs(supernet_and_space):
    """Params of the inherited tensors and MACs traced through the supernet's own forward equal the
    cost model's count of the same config."""
    supernet, space = supernet_and_space
    # Traced on the meta device, like tests/test_cost_trace.py: on CPU tensors the fused attention
    # kernel escapes FlopCounterMode.
    with torch.device("meta"):
        meta_supernet = space.build_supernet().eval()
    for cfg in members(space, 6, seed=7):
        cost = count_config(cfg)
        tensors = supernet.subnet_tensors(cfg)
        assert sum(t.numel() for t in tensors.values() if t.requires_grad) == cost.params
        assert sum(t.numel() for t in tensors.values() if not t.requires_grad) == cost.frozen_params
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            meta_supernet.run(torch.empty(2, 3, 32, 32, device="meta"), cfg)
        assert counter.get_total_flops() // 2 // 2 == cost.macs


def test_configs_outside_the_supernet_are_refused(supernet_and_space):
    supernet, space = supernet_and_space
    cfg = members(space, 1)[0]
    with pytest.raises(NotASubnetwork, match="skeleton"):
        supernet.check_member(cfg.replace(norm="groupnorm1"))
    with pytest.raises(NotASubnetwork, match="larger"):
        supernet.check_member(cfg.replace(**{"stages[0].dim": 48}))
    with pytest.raises(NotASubnetwork, match="no weights for mixer pooling\\(pool_size=5\\)"):
        supernet.check_member(cfg.replace(**{"stages[2].mixer": {"name": "pooling", "pool_size": 5}}))


@pytest.mark.parametrize("rule", RULES)
def test_sampling_never_leaves_the_constraints(rule):
    space = oneshot_space(constraints={"max_macs": 8.0e6})
    sampler = PathSampler(space, rule, seed=1)
    for _ in range(30):
        for cfg in sampler.step():
            cost = count_config(cfg)
            assert cost.macs <= 8.0e6
    assert sum(sampler.mixer_usage.values()) > 0


def test_fair_sampling_trains_every_mixer_of_every_block_once_per_step():
    space = oneshot_space()                          # no constraints: strict fairness holds exactly
    sampler = PathSampler(space, "fair", seed=2)
    assert sampler.paths_per_step == len(ALL_MIXERS)
    for _ in range(10):
        paths = sampler.step()
        for i in range(3):
            assert sorted(p.stages[i].block_mixers()[0].name for p in paths) == sorted(ALL_MIXERS)
    assert sampler.unfair_paths == 0
    shares = sampler.usage_shares()
    assert set(shares) == set(ALL_MIXERS)


def test_sandwich_trains_the_largest_and_the_smallest():
    space = oneshot_space()
    paths = PathSampler(space, "sandwich", seed=0).step()
    assert len(paths) == 4
    assert [s.depth for s in paths[0].stages] == [2, 3, 1] and [s.dim for s in paths[0].stages] == [32, 64, 64]
    assert [s.depth for s in paths[1].stages] == [1, 1, 1] and [s.dim for s in paths[1].stages] == [16, 64, 32]


def test_sampler_state_resumes_the_same_paths():
    space = oneshot_space()
    a = PathSampler(space, "fair", seed=5)
    a.step()
    state = a.state_dict()
    expected = [str(c) for c in a.step()]
    b = PathSampler(space, "fair", seed=99)
    b.load_state_dict(state)
    assert [str(c) for c in b.step()] == expected


def test_oneshot_refuses_what_a_supernet_cannot_share():
    with pytest.raises(ConfigError, match=r"space.stages\[0\].norm: one-shot search varies only"):
        OneShotSpace(space_spec(norm=["layernorm", "groupnorm1"]), 10, 32)
    raw = {"data": {"dataset": "synthetic"}, "space": {"stages": [{"depth": 1, "dim": 16}]},
           "objectives": [{"metric": "train/loss", "mode": "min"}], "search": {"algorithm": "one-shot"}}
    with pytest.raises(ConfigError, match="not measured on inherited weights"):
        OneShotSpace(parse_search_spec(raw, "test", {}), 10, 32)
    with pytest.raises(ConfigError, match="search.oneshot.sampling"):
        parse_search_spec({**raw, "search": {"algorithm": "one-shot", "oneshot": {"sampling": "greedy"}}}, "t", {})


def test_family_patterns_are_members_or_say_why():
    spec = parse_search_spec({
        "data": {"dataset": "synthetic"},
        "space": {"fixed": {"stem": {"kernel_size": 3, "stride": 2, "padding": 1}},
                  "stages": [{"depth": 1, "dim": 32, "mixer": ["identity", "sepconv", "random"]},
                             {"depth": 1, "dim": 64, "mixer": ["identity", "random", "sepconv", "attention"]}]},
        "search": {"algorithm": "one-shot"}}, "test", {})
    space = OneShotSpace(spec, 10, 32)
    found, skipped = space.family_members(space.build_supernet())
    # Two stages: the families' "last two stages differ" pattern covers both (RandFormer: random, random).
    assert set(found) == {"identityformer", "randformer", "convformer"}
    assert [str(s.mixer) for s in found["randformer"].stages] == ["random", "random"]
    assert "no weights for mixer pooling" in skipped["poolformerv2"]
    assert "no weights for mixer attention" in skipped["caformer"]


@pytest.mark.slow
def test_supernet_training_resumes_exactly_from_its_checkpoint(cifar10_root, tmp_path):
    """One epoch, then a resumed second, ends with the same weights (and sampler) as two epochs straight."""
    import dataclasses

    from mfsearch.oneshot.runner import OneShotPlan, build
    from mfsearch.oneshot.training import train_supernet
    from mfsearch.training.checkpoint import CHECKPOINT_NAME

    spec = parse_search_spec({
        "data": {"dataset": "cifar10", "root": str(cifar10_root), "img_size": 32, "train_subset": 200,
                 "val_subset": 100},
        "train": {"recipe": "small", "epochs": 2, "overrides": {"batch_size": 50, "warmup_epochs": 0.5}},
        "space": {"fixed": {"stem": {"kernel_size": 3, "stride": 2, "padding": 1}},
                  "stages": [{"mixer": ["identity", "sepconv"], "depth": [1, 2], "dim": 16},
                             {"mixer": ["pooling", "attention"], "depth": 1, "dim": 32}]},
        "search": {"algorithm": "one-shot"}}, "test", {})
    plan = OneShotPlan(spec, 10, 32, threads=1)

    def trained(epochs: int, resume_from=None, folder=None):
        recipe = dataclasses.replace(spec.recipe, epochs=2)
        _, supernet, sampler, probes = build(plan)
        stop = [] if epochs == 2 else [_StopAfter(epochs)]
        out = train_supernet(supernet, sampler, probes, spec.data, recipe, checkpoint_dir=folder,
                             resume_from=resume_from, threads=1, callbacks=stop)
        return out.module, sampler

    straight, straight_sampler = trained(2)
    first_dir = tmp_path / "first"
    trained(1, folder=first_dir)
    resumed, resumed_sampler = trained(2, resume_from=first_dir / CHECKPOINT_NAME)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert resumed_sampler.mixer_usage == straight_sampler.mixer_usage


class _StopAfter:
    """A Lightning callback that ends training after ``epochs`` epochs (a process killed there)."""

    def __new__(cls, epochs: int):
        import lightning as L

        class Stop(L.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if trainer.current_epoch + 1 >= epochs:
                    trainer.should_stop = True
        return Stop()
