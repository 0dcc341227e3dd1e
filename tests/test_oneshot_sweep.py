"""The one-shot path end to end on a tiny space: `mfsearch run` with `search: {algorithm: one-shot}`
through the real CLI, real Ray, a real MLflow store and real CIFAR-10 images; then `pareto` and
`export` on it as on any sweep, and the exported inherited weights reproduce the logged accuracy."""
from __future__ import annotations

import csv
import io
import json

import pytest
import torch
import yaml

from smoke_sweep import cli

pytestmark = pytest.mark.slow

MAX_MACS = 6.0e6
TINY = {
    "name": "tiny_oneshot",
    "data": {"dataset": "cifar10", "img_size": 32, "train_subset": 400, "val_subset": 200, "val_fraction": 0.1},
    "train": {"recipe": "small", "epochs": 2, "overrides": {"batch_size": 100, "warmup_epochs": 0.2}},
    "space": {"fixed": {"stem": {"kernel_size": 3, "stride": 2, "padding": 1}},
              "stages": [{"mixer": ["identity", "pooling", "sepconv"], "depth": 1, "dim": 32},
                         {"mixer": ["identity", "pooling", "random", "sepconv"], "depth": 1, "dim": 32},
                         {"mixer": ["identity", "random", "sepconv", "attention"], "depth": [1, 2], "dim": 64},
                         {"mixer": ["identity", "random", "attention"], "depth": 1, "dim": 64}]},
    "constraints": {"max_macs": MAX_MACS},
    "objectives": [{"metric": "val/acc1", "mode": "max"}, {"metric": "cost/macs", "mode": "min"}],
    "search": {"algorithm": "one-shot", "num_samples": 30, "seed": 0, "oneshot": {"sampling": "fair"}},
    "resources": {"cpus_per_trial": 2},
}


@pytest.fixture(scope="module")
def oneshot(tmp_path_factory):
    from conftest import CIFAR10
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10}")
    workdir = tmp_path_factory.mktemp("oneshot")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    out = cli("run", "tiny.yaml", "--data-root", str(CIFAR10), cwd=workdir)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return workdir, f"sqlite:///{workdir / 'mlflow.db'}", out.stdout


def test_run_logs_front_baselines_supernet_and_every_evaluated_subnetwork(oneshot):
    from mfsearch.analysis.sweep_data import load_sweep
    from mfsearch.tracking import Store
    from mfsearch.tracking.tags import ACCURACY_TAG, KIND_TAG

    workdir, uri, stdout = oneshot
    assert "one-shot: supernet trained 2 epochs (fair sampling, 4 paths per step)" in stdout
    assert "supernet epoch 2/2" in stdout
    sweep = load_sweep("tiny_oneshot", uri)
    store = Store.open(uri)
    runs = {r.run_id: r for r in store.children(sweep.experiment_id, sweep.parent_run_id)}

    # Front members and the families' mixer patterns the space can express, scored with inherited weights.
    families = sorted(t.family for t in sweep.trials)
    assert {"identityformer", "randformer"} <= set(families) and "searched" in families
    for t in sweep.trials:
        assert runs[t.run_id].tags[ACCURACY_TAG] == "inherited"
        assert t.status == "completed" and t.epochs == 2
        assert 0.0 <= t.metrics["val/acc1"] <= 100.0 and t.metrics["cost/macs"] <= MAX_MACS
        assert "cost/latency_ms" in t.metrics          # measured serially by the driver, like any sweep
        assert {"arch.yaml", "weights.safetensors"} <= set(store.artifact_names(t.run_id))

    # The supernet's own run: one point per epoch, every mixer's share of updates.
    supernet = [r for r in runs.values() if r.tags.get(KIND_TAG) == "supernet"]
    assert len(supernet) == 1
    assert [s for s, _ in store.metric_history(supernet[0].run_id, "train/loss")] == [1, 2]
    shares = {k: v for k, v in supernet[0].metrics.items() if k.startswith("supernet/mixer_share/")}
    assert set(shares) == {f"supernet/mixer_share/{m}" for m in ("identity", "pooling", "random", "sepconv",
                                                                  "attention")}

    # Every evaluated sub-network in one table; its front flags are the searched trial runs.
    table = list(csv.DictReader(io.StringIO(store.artifact_text(sweep.parent_run_id, "oneshot_evaluated.csv"))))
    searched = [row for row in table if row["family"] == "searched"]
    parent = store.run(sweep.parent_run_id)
    assert len(searched) == parent.metrics["oneshot/evaluated"] == 30
    assert len({row["arch"] for row in searched}) == 30          # distinct architectures
    assert all(float(row["cost/macs"]) <= MAX_MACS for row in table)
    assert sum(row["front"] == "1" for row in searched) == sum(t.family == "searched" for t in sweep.trials)


def test_pareto_and_export_work_and_inherited_weights_reproduce_the_logged_accuracy(oneshot, tmp_path):
    import mfsearch
    from mfsearch.data import DataConfig, ImageDataModule
    from mfsearch.schema import parse_dataclass
    from mfsearch.training.recipes import TrainConfig

    workdir, uri, _ = oneshot
    out = cli("pareto", "tiny_oneshot", "--tracking-uri", uri, "--out", str(tmp_path / "pareto"), cwd=workdir)
    assert out.returncode == 0, out.stderr[-2000:]
    exported = tmp_path / "exported"
    out = cli("export", "tiny_oneshot", "--pareto", "--out", str(exported), "--format", "", "--tracking-uri", uri,
              cwd=workdir)
    assert out.returncode == 0, out.stderr[-2000:]
    folders = list(exported.iterdir())
    assert folders
    for folder in folders:
        meta = json.loads((folder / "export.json").read_text())
        model = mfsearch.create_model(str(folder / "arch.yaml"), pretrained=str(folder / "weights.safetensors")).eval()
        recipe = parse_dataclass(TrainConfig, meta["recipe"], "")
        data = ImageDataModule(parse_dataclass(DataConfig, meta["data"], "data"), recipe.augment, batch_size=100)
        data.setup("validate")
        correct = seen = 0
        with torch.no_grad():
            for x, y in data.val_dataloader():
                correct += int((model(x).argmax(1) == y).sum())
                seen += len(y)
        assert 100.0 * correct / seen == pytest.approx(meta["metrics"]["val/acc1"], abs=100.0 / seen)
