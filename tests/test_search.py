"""The real `mfsearch run` on search_spaces/smoke.yaml: real local Ray, real MLflow, real CIFAR."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfsearch.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke.yaml"

pytestmark = pytest.mark.slow


def cli(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def child_runs(db: Path, experiment: str = "smoke"):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("mfsearch.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_smoke_sweep_then_kill_and_resume(tmp_path, cifar10_root):
    # 1. A complete sweep.
    out = cli("run", str(SMOKE), "--data-root", str(cifar10_root), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Pareto front" in out.stdout and "rejected by constraints" in out.stdout
    client, parents, children = child_runs(tmp_path / "mlflow.db")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"smoke.yaml", "resolved.yaml"}
    assert len(children) == 5  # 2 baselines + 3 searched
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    families = sorted(c.data.tags["mfsearch.family"] for c in children)
    assert families == ["caformer", "identityformer", "searched", "searched", "searched"]
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["mfsearch.status"] == "completed"
        for key in ("stage0.mixer", "stage3.mixer", "stage2.depth", "stage1.dim", "stage0.mlp_act", "family"):
            assert key in c.data.params, key
        for key in ("val/acc1", "val/loss", "train/loss", "cost/params", "cost/frozen_params", "cost/macs",
                    "cost/latency_ms", "cost/latency_iqr_ms", "cost/latency_ms_in_trial", "epochs_reached"):
            assert key in c.data.metrics, key
        # Measured serially by the driver after the trainings, under the recorded protocol.
        assert c.data.params["latency.threads"] == "1" and c.data.params["latency.statistic"] == "median"
        assert c.data.metrics["cost/macs"] > 0 and c.data.metrics["cost/latency_ms"] > 0
        assert {"arch.yaml", "weights.safetensors"} <= {a.path for a in client.list_artifacts(c.info.run_id)}
    caformer = next(c for c in children if c.data.tags["mfsearch.family"] == "caformer")
    assert caformer.data.params["stage2.mixer"] == "attention" and caformer.data.params["head"] == "mlp"
    # Searched candidates respect the constraint; rejected ones were counted, not trained.
    searched = [c for c in children if c.data.tags["mfsearch.family"] == "searched"]
    assert all(c.data.metrics["cost/macs"] <= 6.0e6 for c in searched)
    parent = client.get_run(parent.info.run_id)
    assert parent.data.metrics["sweep/rejected"] > 0
    assert parent.data.metrics["sweep/failed"] == 0

    # 2. Kill the driver mid-sweep, then resume: every trial exactly once.
    work = tmp_path / "resume"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mfsearch.cli.main", "run", str(SMOKE), "--data-root",
                             str(cifar10_root)], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 300
    db = work / "mlflow.db"
    # Wait for a trial's first checkpoint on disk (not by polling the SQLite store: a reader racing
    # the driver's schema creation is the MLflow pitfall the driver-only writer design avoids).
    while time.time() < deadline and not list((work / "mfsearch_runs" / "smoke").glob("trial_*/checkpoint_*")):
        time.sleep(1)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    out = cli("run", "--resume", "smoke", cwd=work)
    assert out.returncode == 0, out.stderr[-3000:]
    client, parents, children = child_runs(db)
    assert len(parents) == 1
    trial_ids = [c.data.tags["mfsearch.trial_id"] for c in children]
    assert len(children) == 5 and len(set(trial_ids)) == 5
    assert all(c.info.status == "FINISHED" for c in children)


@pytest.mark.parametrize("text, message", [
    ("space:\n  stages:\n    - {mixer: [identity, atention], depth: 1, dim: 32}\n",
     "space.stages[0].mixer: 'atention' is not one of identity, pooling, random, sepconv, attention"),
    ("space:\n  stages:\n    - {mixer: [], depth: 1, dim: 32}\n", "space.stages[0].mixer: empty choice list"),
    ("space:\n  stages:\n    - {mixer: pooling, depth: one, dim: 32}\n", "stages[0].depth: expected an int"),
    ("space:\n  stages:\n    - {mixer: pooling, depth: 1, dim: 32}\nsearch: {algorithm: bayes}\n",
     "search.algorithm: 'bayes' is not one of random, grid, optuna-tpe, optuna-nsga2"),
    ("data: {dataset: imagenet}\nspace:\n  stages:\n    - {mixer: pooling, depth: 1, dim: 32}\n",
     "data.dataset: 'imagenet' is not one of cifar10, cifar100, imagefolder, synthetic"),
    ("space:\n  stages:\n    - {mixer: pooling, depth: 1, dim: 32}\nconstraints: {max_macs: 10}\nbaselines: none\n",
     "constraints: no candidate of the space meets them"),
    ("space:\n  stagez: []\n", "space.stagez: unknown field"),
    ("space:\n  stages:\n    - {mixer: pooling, depth: 1, dim: 32}\nobjectives: [{metric: val/acc, mode: max}]\n",
     "objectives[0].metric: 'val/acc' is not one of"),
    ("space:\n  stages:\n    - {mixer: pooling, depth: 1, dim: 32}\ntrain: {overrides: {lr: fast}}\n",
     "train.overrides.lr: expected a number"),
])
def test_bad_space_fails_before_ray_and_mlflow(tmp_path, cifar10_root, text, message, monkeypatch, capsys):
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    monkeypatch.chdir(tmp_path)
    # The console entry point in-process (a subprocess per case would spend its time importing torch).
    code = main(["run", str(space), "--data-root", str(cifar10_root)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert str(space) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mfsearch_runs").exists()


FAILING = """
name: failing
data: {dataset: cifar10, img_size: 32, train_subset: 200, val_subset: 100}
train: {recipe: small, epochs: 1, overrides: {batch_size: 50}}
space:
  fixed: {stem: {kernel_size: 3, stride: 2, padding: 1}}
  stages:
    - {depth: 1, dim: 32, mixer: pooling, layer_scale_init: [1.0e+30, 1.0]}   # 1e30 blows the loss up
    - {depth: 1, dim: 64, mixer: pooling}
baselines: none
search: {algorithm: grid, num_samples: 2}
"""


def test_failed_trial_is_recorded_and_sweep_goes_on(tmp_path, cifar10_root):
    space = tmp_path / "failing.yaml"
    space.write_text(FAILING)
    out = cli("run", str(space), "--data-root", str(cifar10_root), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 failed" in out.stdout and "non-finite" in out.stdout
    client, parents, children = child_runs(tmp_path / "mlflow.db", "failing")
    statuses = sorted((c.info.status, c.data.tags["mfsearch.status"]) for c in children)
    assert statuses == [("FAILED", "failed"), ("FINISHED", "completed")]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "non-finite" in failed.data.tags["error"] or "FloatingPointError" in failed.data.tags["error"]
    assert client.get_run(parents[0].info.run_id).data.metrics["sweep/failed"] == 1


MO_ASHA = """
name: moasha
data: {dataset: cifar10, img_size: 32, train_subset: 300, val_subset: 100}
train: {recipe: small, epochs: 3, overrides: {batch_size: 100, warmup_epochs: 0.2}}
space:
  fixed: {stem: {kernel_size: 3, stride: 2, padding: 1}}
  stages:
    - {mixer: [identity, pooling, sepconv], depth: 1, dim: 32}
    - {mixer: [identity, pooling, random, sepconv], depth: 1, dim: 32}
    - {mixer: [identity, random, sepconv, attention], depth: [1, 2], dim: 64}
    - {mixer: [identity, random, attention], depth: 1, dim: 64}
baselines: {families: [identityformer, poolformerv2, caformer]}
objectives: [{metric: val/acc1, mode: max}, {metric: cost/macs, mode: min}]
search: {algorithm: random, num_samples: 6, seed: 0}
scheduler: {name: mo-asha, grace_period: 1, reduction_factor: 3}
"""


def test_mo_asha_sweep_stops_searched_trials_never_baselines(tmp_path, cifar10_root):
    space = tmp_path / "moasha.yaml"
    space.write_text(MO_ASHA)
    out = cli("run", str(space), "--data-root", str(cifar10_root), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mfsearch confirm moasha" in out.stdout          # the run ends by pointing at the confirmation
    client, parents, children = child_runs(tmp_path / "mlflow.db", "moasha")
    assert parents[0].data.params["scheduler"] == "mo-asha"
    baselines = [c for c in children if c.data.tags["mfsearch.family"] != "searched"]
    searched = [c for c in children if c.data.tags["mfsearch.family"] == "searched"]
    assert len(baselines) == 3 and len(searched) == 6
    # Baselines always reach full fidelity; the scheduler does stop searched trials (ceil(n/3) go on per rung).
    assert all(b.data.tags["mfsearch.status"] == "completed" and b.data.metrics["epochs_reached"] == 3
               for b in baselines)
    stopped = [c for c in searched if c.data.tags["mfsearch.status"] == "stopped_early"]
    assert stopped and all(c.data.metrics["epochs_reached"] < 3 for c in stopped)


@pytest.mark.parametrize("args", [["--name", "../../etc"], ["--name", "/abs/path"], ["--name", ".hidden"],
                                  ["--resume", "../x"]])
def test_sweep_names_are_names_not_paths(tmp_path, cifar10_root, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    space = [] if args[0] == "--resume" else [str(SMOKE)]
    code = main(["run", *space, *args, "--data-root", str(cifar10_root)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a name" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []          # no store, no Tune folder, nothing outside either


def test_misspelt_set_section_is_refused(tmp_path, cifar10_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(SMOKE), "--set", "serach.num_samples=0", "--data-root", str(cifar10_root)])
    err = capsys.readouterr().err
    assert code == 2 and "--set serach.num_samples: unknown section 'serach'" in err
    assert list(tmp_path.iterdir()) == []


def test_unreachable_tracking_server_fails_in_seconds(tmp_path, cifar10_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["run", str(SMOKE), "--data-root", str(cifar10_root)], ["pareto", "smoke"], ["confirm", "smoke"]):
        start = time.monotonic()
        code = main([*argv, "--tracking-uri", "http://127.0.0.1:1"])
        err = capsys.readouterr().err
        assert code == 2 and "tracking server http://127.0.0.1:1 is not reachable" in err, err
        assert len(err.strip().splitlines()) == 1 and time.monotonic() - start < 60   # MLflow's own retries: minutes
    assert list(tmp_path.iterdir()) == []
