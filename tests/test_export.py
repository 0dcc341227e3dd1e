"""After the search, end to end on a real smoke sweep: `mfsearch pareto`, `export`, `retrain` and their
errors, through the CLI entry point (in process, for speed; the sweep itself runs as a subprocess)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from mfsearch.cli.main import main
from smoke_sweep import shared_smoke_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from conftest import CIFAR10
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10}")
    sweep = shared_smoke_sweep(tmp_path_factory, CIFAR10)
    _add_sweep_without_finished_trials(sweep.tracking_uri)
    return sweep


def _add_sweep_without_finished_trials(uri: str) -> None:
    """Experiment 'empty': a sweep run whose only trial failed."""
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    if client.get_experiment_by_name("empty"):
        return
    exp = client.create_experiment("empty", artifact_location=uri[len("sqlite:///"):] + ".empty-artifacts")
    parent = client.create_run(exp, tags={"mfsearch.kind": "sweep"})
    child = client.create_run(exp, tags={"mlflow.parentRunId": parent.info.run_id, "mfsearch.trial_id": "t1",
                                         "mfsearch.family": "searched", "mfsearch.status": "failed"})
    client.set_terminated(child.info.run_id, "FAILED")
    client.set_terminated(parent.info.run_id, "FINISHED")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_pareto_table_png_html_and_logged_to_the_sweep(sweep, tmp_path, capsys):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    out = tmp_path / "pareto"
    code, stdout, err = run_cli(capsys, "pareto", "smoke", "--out", str(out), "--tracking-uri", sweep.tracking_uri)
    assert code == 0, err
    assert "front M P L" in stdout and "identityformer" in stdout and "caformer" in stdout
    assert "HV all" in stdout and "HV baselines" in stdout
    png = Image.open(out / "pareto.png")
    assert png.width > 1000 and png.height > 400
    page = (out / "pareto.html").read_text()
    assert "Plotly.newPlot" in page and 'src="http' not in page   # plotly.js inlined: opens offline
    report = json.loads((out / "front.json").read_text())
    macs = next(f for f in report["fronts"] if f["cost"] == "cost/macs")
    assert macs["members"] and 0 < macs["hypervolume_baselines"] <= macs["hypervolume"] <= 1
    client = MlflowClient(sweep.tracking_uri)
    parent = client.get_run(report["parent_run_id"])
    assert parent.data.metrics["pareto/hv_macs"] == pytest.approx(macs["hypervolume"])
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "pareto")} == {
        "pareto/front.json", "pareto/front.csv", "pareto/pareto.png", "pareto/pareto.html"}


def test_export_pareto_reloads_matches_onnx_and_reproduces_val_accuracy(sweep, tmp_path, capsys):
    import onnxruntime as ort

    import mfsearch
    from mfsearch.analysis.fronts import pareto_report
    from mfsearch.analysis.sweep_data import load_sweep

    out = tmp_path / "exported"
    code, stdout, err = run_cli(capsys, "export", "smoke", "--pareto", "--out", str(out), "--format",
                                "onnx,torchscript", "--tracking-uri", sweep.tracking_uri)
    assert code == 0, err
    front = pareto_report(load_sweep("smoke", sweep.tracking_uri)).fronts[0]
    expected = sorted(f"{m.trial.family}-{m.trial.trial_id}" for m in front.members)
    assert sorted(p.name for p in out.iterdir()) == expected
    for folder in out.iterdir():
        assert {p.name for p in folder.iterdir()} == {"arch.yaml", "weights.safetensors", "model.onnx", "model.ts",
                                                     "README.md", "export.json"}
        card = (folder / "README.md").read_text()
        for part in ("## Architecture", "| 0 |", "MACs per image", "val/acc1", "fidelity", "cifar10",
                     "mfsearch.create_model("):
            assert part in card, part
        meta = json.loads((folder / "export.json").read_text())
        model = mfsearch.create_model(str(folder / "arch.yaml"), pretrained=str(folder / "weights.safetensors")).eval()
        images, labels = _val_split(meta)
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        batch = images[:64]
        with torch.no_grad():
            want = model(batch).numpy()
            correct = sum(int((model(images[i:i + 100]).argmax(1) == labels[i:i + 100]).sum())
                          for i in range(0, len(labels), 100))
        got = session.run(None, {"images": batch.numpy()})[0]
        assert np.abs(got - want).max() <= 1e-4
        assert np.abs(torch.jit.load(str(folder / "model.ts"))(batch).detach().numpy() - want).max() <= 1e-4
        # The exported weights reproduce the trial's logged accuracy on the same validation split.
        assert 100.0 * correct / len(labels) == pytest.approx(meta["metrics"]["val/acc1"], abs=100.0 / len(labels))


def _val_split(meta: dict) -> tuple[torch.Tensor, torch.Tensor]:
    from mfsearch.data import DataConfig, ImageDataModule
    from mfsearch.schema import parse_dataclass
    from mfsearch.training.recipes import TrainConfig

    recipe = parse_dataclass(TrainConfig, meta["recipe"], "")
    data = ImageDataModule(parse_dataclass(DataConfig, meta["data"], "data"), recipe.augment, batch_size=100)
    data.setup("validate")
    batches = list(data.val_dataloader())
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def test_export_top_k_overwrite_register_then_retrain(sweep, tmp_path, capsys, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    out = tmp_path / "best"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier export")
    code, _, err = run_cli(capsys, "export", "smoke", "--top-k", "1", "--out", str(out), "--format", "",
                           "--tracking-uri", sweep.tracking_uri)
    assert code == 2 and "exists and is not empty" in err and len(err.strip().splitlines()) == 1
    assert (out / "keep.txt").read_text() == "an earlier export"          # untouched
    env_before = {var: os.environ.get(var) for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    code, stdout, err = run_cli(capsys, "export", "smoke", "--top-k", "1", "--out", str(out), "--format", "",
                                "--overwrite", "--register", "smoke-best", "--tracking-uri", sweep.tracking_uri)
    assert code == 0, err
    # MLflow's fluent setters export these for subprocesses; registering must not leave them behind
    # (they would send every later sweep in this process to this store).
    assert {var: os.environ.get(var) for var in env_before} == env_before
    (folder,) = list(out.iterdir())
    assert {p.name for p in folder.iterdir()} == {"arch.yaml", "weights.safetensors", "README.md", "export.json"}
    assert not list(tmp_path.glob(".best*"))                               # no staging folder left
    meta = json.loads((folder / "export.json").read_text())
    version = MlflowClient(sweep.tracking_uri, registry_uri=sweep.tracking_uri).get_model_version("smoke-best", "1")
    assert version.run_id == meta["run_id"] and version.tags["mfsearch.trial_id"] == meta["trial_id"]
    import mfsearch
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", sweep.tracking_uri)  # models:/ URIs resolve through it
    registered = mlflow.pytorch.load_model("models:/smoke-best/1")
    model = mfsearch.create_model(str(folder / "arch.yaml"), pretrained=str(folder / "weights.safetensors")).eval()
    x = torch.randn(5, 3, 32, 32)   # another batch size than registered with: the batch axis is dynamic
    with torch.no_grad():
        assert torch.allclose(registered(x), model(x), atol=1e-5)

    # Retrain from the export folder, on train+val, tested on (a subset of) the test split.
    monkeypatch.chdir(tmp_path)  # its artifacts go beside the sweep's, not into the working folder
    code, stdout, err = run_cli(capsys, "retrain", str(folder), "--epochs", "1", "--full-train", "--no-progress",
                                "--set", "data.test_subset=500", "--tracking-uri", sweep.tracking_uri)
    assert code == 0, err
    assert "test/acc1" in stdout
    client = MlflowClient(sweep.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("smoke-retrain").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["mfsearch.source_run_id"] == meta["run_id"] and run.data.tags["mfsearch.full_train"] == "true"
    assert "test/acc1" in run.data.metrics and run.data.params["data.train_on_val"] == "True"
    # Exactly the search's 500 train + 200 validation images (the split and subsets as the search drew them).
    assert run.data.params["data.train_subset"] == "500" and run.data.params["data.val_subset"] == "200"
    assert "val/acc1" not in run.data.metrics
    assert run.info.artifact_uri.startswith(str(sweep.workdir / "mlruns"))
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("args, message", [
    (["pareto", "nosuch"], "no sweep named 'nosuch'"),
    (["dashboard", "nosuch"], "no sweep named 'nosuch'"),
    (["export", "0123456789abcdef0123456789abcdef", "--pareto", "--out", "{out}"], "no sweep named"),
    (["export", "smoke", "--run-id", "fedcba9876543210fedcba9876543210", "--out", "{out}"], "is not a trial of sweep"),
    (["export", "smoke", "--top-k", "0", "--out", "{out}"], "--top-k: must be at least 1, got 0"),
    (["export", "smoke", "--pareto", "--format", "onnx,tflite", "--out", "{out}"], "'tflite' is not one of"),
    (["pareto", "empty"], "has no finished trials"),
    (["dashboard", "empty"], "has no finished trials"),
    (["export", "empty", "--top-k", "2", "--out", "{out}"], "has no finished trials"),
    (["retrain", "{out}"], "neither an export folder nor an MLflow run id"),
    (["retrain", "0123456789abcdef0123456789abcdef"], "no run 0123456789abcdef0123456789abcdef"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(sweep, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # default outputs (./<sweep>-pareto, ...) would land here
    out = tmp_path / "out"
    argv = [a.replace("{out}", str(out)) for a in args] + ["--tracking-uri", sweep.tracking_uri]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []                       # nothing written, not even a folder


def test_missing_store_is_an_error_not_a_new_database(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "mlflow.db"
    code, _, err = run_cli(capsys, "pareto", "smoke", "--tracking-uri", str(missing))
    assert code == 2 and "no MLflow store at" in err
    assert not missing.parent.exists()


@pytest.mark.parametrize("family, trial_id, expected", [
    ("preset:caformer_s18", "ab12", "preset-caformer_s18-ab12"),
    ("../../etc", "x", "etc-x"),
    ("/abs/path", "../y", "abs-path-..-y"),
    ("..", "..", "unnamed"),
    ("a\nb", "c d", "a-b-c-d"),
], ids=["preset", "dotdot", "absolute", "only-dots", "whitespace"])
def test_export_folder_names_from_tags_are_names(family, trial_id, expected):
    from mfsearch.export.exporter import folder_name_for, safe_name
    from mfsearch.analysis.sweep_data import TrialRecord

    trial = TrialRecord("0" * 32, trial_id, family, "completed", 1, {}, (), {})
    name = folder_name_for(trial)
    assert name == expected and "/" not in name and not name.startswith(".")
    assert len(safe_name("x" * 500)) == 80
