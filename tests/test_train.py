"""End to end: the real `mfsearch train` on real CIFAR-10 JPEGs, logged to a real MLflow store."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import mfsearch
from mfsearch.cli.main import main

TINY = {"num_classes": 10, "img_size": 32, "stem": {"kernel_size": 3, "stride": 2, "padding": 1},
        "depth": [1, 1, 1], "dim": [32, 64, 96], "mixer": ["sepconv", "sepconv", "attention"]}

pytestmark = pytest.mark.slow


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def train_args(arch: Path, root: Path, db: Path) -> list[str]:
    return ["train", str(arch), "--data", "cifar10", "--data-root", str(root), "--epochs", "2",
            "--train-subset", "2000", "--val-subset", "500", "--set", "data.test_subset=500",
            "--set", "lr=3e-3", "--tracking-uri", f"sqlite:///{db}", "--experiment", "e2e", "--no-progress"]


def runs_of(db: Path, experiment: str):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(experiment)
    return client, ([] if exp is None else client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]))


def test_train_end_to_end(tmp_path, cifar10_root):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(yaml.safe_dump(TINY))
    db = tmp_path / "mlflow.db"
    out = run_cli(*train_args(arch, cifar10_root, db), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]

    client, runs = runs_of(db, "e2e")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    params, metrics = run.data.params, run.data.metrics
    assert params["stage0.mixer"] == "sepconv" and params["stage2.mixer"] == "attention"
    assert params["stage1.dim"] == "64" and params["stage2.depth"] == "1"
    assert metrics["val/acc1"] > 20.0  # chance is 10% (seeds give 22-26 here)
    for key in ("train/loss", "val/loss", "val/acc5", "test/acc1", "lr", "train/images_per_s",
                "cost/params", "cost/frozen_params", "cost/macs"):
        assert key in metrics, key
    assert metrics["cost/params"] == mfsearch.count_cost(str(arch)).params
    history = client.get_metric_history(run.info.run_id, "val/acc1")
    assert sorted(m.step for m in history) == [1, 2]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"arch.yaml", "weights.safetensors"} <= artifacts
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))

    # The saved weights reload into create_model and reproduce the logged val accuracy.
    from mfsearch.data import DataConfig, ImageDataModule
    from mfsearch.training.recipes import SMALL
    model = mfsearch.create_model(str(local / "arch.yaml"), pretrained=local / "weights.safetensors").eval()
    dm = ImageDataModule(DataConfig(dataset="cifar10", root=str(cifar10_root), train_subset=2000, val_subset=500,
                                    test_subset=500), SMALL.augment, batch_size=128)
    dm.setup("fit")
    correct = total = 0
    with torch.no_grad():
        for x, y in dm.val_dataloader():
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    assert total == 500
    assert 100.0 * correct / total == pytest.approx(metrics["val/acc1"], abs=1e-3)

    # Seeded: the same command again logs the same metrics (throughput aside).
    again = run_cli(*train_args(arch, cifar10_root, db), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    _, runs = runs_of(db, "e2e")
    assert len(runs) == 2
    first, second = (r.data.metrics for r in runs)
    timing = {"train/images_per_s"}
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}


@pytest.mark.parametrize("args, message", [
    (["--data-root", "/nonexistent/cifar"], "/nonexistent/cifar"),
    (["--set", "lr=fast"], "lr: expected a number"),
    (["--set", "learning_rate=0.1"], "learning_rate: unknown recipe field"),
    (["--set", "augment.randaug=x"], "augment.randaug: unknown recipe field"),
    (["--recipe", "fast"], "recipe: 'fast' is not one of paper, small"),
    (["--set", "data.train_subset=-5"], "data.train_subset: must be > 0"),
    (["--set", "arch.mixer=conv"], "'conv' is not one of identity"),
])
def test_bad_input_exits_2_before_any_run(tmp_path, cifar10_root, args, message, capsys):
    db = tmp_path / "mlflow.db"
    base = ["train", "caformer_s18", "--data", "cifar10", "--data-root", str(cifar10_root), "--epochs", "1",
            "--tracking-uri", f"sqlite:///{db}", "--experiment", "bad"]
    code = main([*base, *args])  # the console entry point, in-process
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    _, runs = runs_of(db, "bad") if db.exists() else (None, [])
    assert runs == []


def test_wrong_layout_exits_2(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    out = run_cli("train", "caformer_s18", "--data", "imagefolder", "--data-root", str(root), "--epochs", "1",
                  "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", cwd=tmp_path)
    assert out.returncode == 2
    assert str(root) in out.stderr and "Traceback" not in out.stderr
