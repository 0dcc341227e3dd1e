"""Training pieces on synthetic data: schedule, weight-decay groups, and every recipe switch."""
from __future__ import annotations

import math

import pytest

import mfsearch
from mfsearch.data import DataConfig
from mfsearch.training.module import ClassificationModule, warmup_cosine
from mfsearch.training.recipes import paper_recipe, resolve_recipe
from mfsearch.training.run import train

TINY = {"num_classes": 10, "img_size": 32, "stem": {"kernel_size": 3, "stride": 2, "padding": 1},
        "depth": [1, 1], "dim": [32, 64], "mixer": ["sepconv", "attention"], "head": {"type": "mlp"}}
SYNTH = DataConfig(dataset="synthetic", synthetic_size=256, img_size=32, val_fraction=0.25)


def test_warmup_then_cosine():
    lrs = [warmup_cosine(s, 10, 110, 1e-3, 1e-6, 1e-5) for s in range(111)]
    assert lrs[0] == pytest.approx(1e-6) and lrs[10] == pytest.approx(1e-3)
    assert all(b > a for a, b in zip(lrs[:10], lrs[1:11]))            # linear warmup
    assert all(b <= a for a, b in zip(lrs[10:], lrs[11:]))            # cosine decay
    assert lrs[60] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))       # half way
    assert lrs[110] == pytest.approx(1e-5)


def test_no_weight_decay_on_1d_parameters():
    model = mfsearch.create_model(TINY)
    module = ClassificationModule(model, resolve_recipe("small"), 10)

    class FakeTrainer:
        estimated_stepping_batches = 100
    module.trainer = FakeTrainer()  # configure_optimizers only reads the step count
    opt = module.configure_optimizers()["optimizer"]
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.ndim > 1), name   # norms, biases, scales, StarReLU s/b exempt


def test_paper_recipe_per_family():
    ca, conv, rand = paper_recipe("caformer_b36"), paper_recipe("convformer_s18"), paper_recipe("randformer_m48")
    assert (ca.optimizer, ca.lr, ca.warmup_epochs, ca.drop_path_rate, ca.head_dropout) == ("lamb", 8e-3, 20, 0.6, 0.5)
    assert (conv.optimizer, conv.lr, conv.drop_path_rate) == ("adamw", 4e-3, 0.2)
    assert rand.drop_path_rate == 0.3 and rand.warmup_epochs == 5
    assert ca.batch_size * ca.accumulate_grad_batches == 4096
    assert (ca.mixup, ca.cutmix, ca.label_smoothing, ca.augment.rand_augment) == (0.8, 1.0, 0.1, "rand-m9-mstd0.5-inc1")


@pytest.mark.parametrize("overrides", [
    {"ema": True, "ema_decay": 0.9},
    {"grad_clip": 1.0, "optimizer": "lamb"},
    {"mixup": 0.8, "cutmix": 1.0},
    {"channels_last": True},
    {"precision": "bf16-mixed"},
    {"accumulate_grad_batches": 2, "augment.rand_augment": "rand-m6-mstd0.5-inc1", "augment.random_erasing": 0.25},
], ids=lambda o: ",".join(o))
def test_recipe_switches_train(overrides):
    recipe = resolve_recipe("small", None, {"epochs": 1, "batch_size": 32, **overrides})
    result = train(TINY, SYNTH, recipe, log_to_mlflow=False, progress=False)
    for key in ("train/loss", "val/loss", "val/acc1", "test/acc1", "train/images_per_s"):
        assert math.isfinite(result.metrics[key]), key
    if recipe.ema:
        assert result.model is not None and not any(p.requires_grad for p in result.model.parameters())


def test_synthetic_is_learnable():
    recipe = resolve_recipe("small", None, {"epochs": 3, "batch_size": 32, "lr": 3e-3})
    result = train(TINY, SYNTH, recipe, log_to_mlflow=False, progress=False)
    assert result.metrics["val/acc1"] > 40.0  # chance is 10%


def test_non_finite_loss_stops_training():
    recipe = resolve_recipe("small", None, {"epochs": 1, "batch_size": 32, "lr": 1e6, "warmup_epochs": 0.0})
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        train(TINY, SYNTH, recipe, log_to_mlflow=False, progress=False)
