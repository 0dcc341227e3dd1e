"""`mfsearch confirm` end to end on a real smoke sweep: real Ray, real MLflow, real CIFAR-10 images.

The sweep is the session's shared smoke sweep; each test works on a copy of its store, so the
confirm runs written here never show up in other tests' reads.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfsearch.cli.main import main
from smoke_sweep import cli, shared_smoke_sweep

pytestmark = pytest.mark.slow

FAST = ["--seeds", "2", "--epochs", "1", "--set", "data.train_subset=300"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from conftest import CIFAR10
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10}")
    return shared_smoke_sweep(tmp_path_factory, CIFAR10)


@pytest.fixture
def store(sweep, tmp_path) -> tuple[Path, str]:
    """A working folder holding a copy of the smoke sweep's MLflow store."""
    shutil.copyfile(sweep.workdir / "mlflow.db", tmp_path / "mlflow.db")
    return tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}"


def runs_by_kind(uri: str):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    kinds: dict[str, list] = {}
    for r in runs:
        kind = r.data.tags.get("mfsearch.kind") or ("seed" if "mfsearch.seed" in r.data.tags else "trial")
        kinds.setdefault(kind, []).append(r)
    return client, kinds


def test_confirm_nested_runs_same_seeds_intervals_verdicts_and_tau(store):
    work, uri = store
    out = cli("confirm", "smoke", *FAST, cwd=work)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    client, kinds = runs_by_kind(uri)
    (sweep_run,) = kinds["sweep"]
    (parent,) = kinds["confirm"]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mfsearch.sweep_run_id"] == sweep_run.info.run_id
    archs = kinds["confirm-arch"]
    families = sorted(a.data.tags["mfsearch.family"] for a in archs)
    # Every baseline of the sweep, plus the searched members of its MACs front (how many depends
    # on what the sweep measured: read its front).
    from mfsearch.analysis.fronts import COST_AXES, build_front
    from mfsearch.analysis.sweep_data import load_sweep
    sweep_front = build_front(load_sweep("smoke", uri).finished, COST_AXES[0])
    on_front = sum(1 for m in sweep_front.members if m.trial.family == "searched")
    assert families == ["caformer", "identityformer"] + ["searched"] * on_front
    trial_ids = {r.info.run_id for r in kinds["trial"]}
    seeds = kinds["seed"]
    assert len(seeds) == 2 * len(archs)
    for a in archs:
        assert a.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert a.data.tags["mfsearch.source_run_id"] in trial_ids          # linked to its sweep trial
        mine = [s for s in seeds if s.data.tags["mlflow.parentRunId"] == a.info.run_id]
        assert sorted(int(s.data.tags["mfsearch.seed"]) for s in mine) == [1, 2]   # the same seeds for all
        vals = [s.data.metrics["val/acc1"] for s in mine]
        assert all("test/acc1" in s.data.metrics and s.info.status == "FINISHED" for s in mine)
        m = a.data.metrics
        assert m["confirm/val_acc1_mean"] == pytest.approx(sum(vals) / 2)
        assert m["confirm/val_acc1_ci_low"] <= m["confirm/val_acc1_mean"] <= m["confirm/val_acc1_ci_high"]
        assert "confirm/test_acc1_mean" in m and m["cost/macs"] > 0
    report = json.loads(Path(client.download_artifacts(parent.info.run_id, "confirm.json", str(work))).read_text())
    assert report["seeds"] == [1, 2] and report["epochs"] == 1 and report["train_images"] == 300
    searched = {a["key"] for a in report["archs"] if a["family"] == "searched"}
    baselines = {a["key"]: a for a in report["archs"] if a["family"] != "searched"}
    for claim in report["claims"]:
        assert claim["baseline"] in baselines and (claim["arch"] in searched or claim["claimed_by_sweep"])
        assert claim["verdict"] in ("confirmed", "refuted", "unconfirmed")
        d = claim["difference"]
        assert d["low"] <= d["mean"] <= d["high"] and claim["seeds"] == [1, 2]
    # Every (searched, baseline) pair where the searched one has no more MACs is judged.
    macs = {a["key"]: a["macs"] for a in report["archs"]}
    expected = {(s, b) for s in searched for b in baselines if macs[s] <= macs[b]}
    assert {(c["arch"], c["baseline"]) for c in report["claims"] if c["arch"] in searched} == expected
    # Kendall tau: on the confirm run and on the sweep's own run.
    tau = parent.data.metrics["confirm/kendall_tau"]
    assert -1 <= tau <= 1 and tau == pytest.approx(report["kendall_tau"])
    assert client.get_run(sweep_run.info.run_id).data.metrics["confirm/kendall_tau"] == pytest.approx(tau)
    assert "Kendall tau" in out.stdout and "95 % interval" in out.stdout and "verdict" in out.stdout
    # The MLflow UI opens the experiment as model training, with views whose columns are our metrics.
    tags = client.get_experiment_by_name("smoke").tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags["mlflow.sharedViewState.mfsearch-confirm"])
    assert "metrics.`confirm/val_acc1_mean`" in view["selectedColumns"]
    assert view["orderByKey"] == "metrics.`confirm/val_acc1_mean`" and "confirm-arch" in view["searchFilter"]
    assert "metrics.`val/acc1`" in json.loads(tags["mlflow.sharedViewState.mfsearch-sweep"])["selectedColumns"]
    assert "viewStateShareKey=mfsearch-confirm&workflowType=machine_learning" in out.stdout
    # The after-sweep reports now carry the confirmation: intervals, verdicts, tau.
    assert main(["pareto", "smoke", "--tracking-uri", uri, "--out", str(work / "p"), "--no-log"]) == 0
    front = json.loads((work / "p" / "front.json").read_text())
    assert front["confirmation"]["confirm_run_id"] == parent.info.run_id
    import csv
    with open(work / "p" / "front.csv") as f:
        beaten = [d for row in csv.DictReader(f) for d in row["dominates"].split(";") if d]
    assert all(d.rsplit(":", 1)[1] in ("confirmed", "refuted", "unconfirmed") for d in beaten)   # never bare
    assert main(["dashboard", "smoke", "--tracking-uri", uri, "-o", str(work / "d.html")]) == 0
    page = (work / "d.html").read_text()
    assert "claims-table" in page and "confirmed-table" in page and "Kendall tau" in page
    # A second confirmation under the same name is refused: --resume or another --name.
    again = cli("confirm", "smoke", *FAST, cwd=work)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_interrupted_confirm_resumes_without_duplicates_or_losses(store):
    work, uri = store
    proc = subprocess.Popen([sys.executable, "-m", "mfsearch.cli.main", "confirm", "smoke", *FAST], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    folder = work / "mfsearch_runs" / "smoke-confirm"
    while time.time() < deadline and not list(folder.glob("trial_*/checkpoint_*")):
        time.sleep(1)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)       # the driver and the local Ray it started
    proc.wait()
    out = cli("confirm", "smoke", "--resume", cwd=work)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    _, kinds = runs_by_kind(uri)
    assert len(kinds["confirm"]) == 1 and kinds["confirm"][0].info.status == "FINISHED"
    archs = kinds["confirm-arch"]
    pairs = [(s.data.tags["mfsearch.arch_key"], s.data.tags["mfsearch.seed"]) for s in kinds["seed"]]
    assert len(pairs) == len(set(pairs)) == 2 * len(archs)             # each (architecture, seed) exactly once
    assert all(s.info.status == "FINISHED" for s in kinds["seed"])
    assert all(a.data.metrics["confirm/seeds"] == 2 for a in archs)


def _sweep_without_finished_trials(uri: str) -> None:
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.create_experiment("empty", artifact_location=uri[len("sqlite:///"):] + ".empty-artifacts")
    parent = client.create_run(exp, tags={"mfsearch.kind": "sweep"})
    client.set_terminated(parent.info.run_id, "FINISHED")


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "no sweep named 'nosuch'"),
    (["smoke", "--seeds", "0"], "--seeds: must be at least 1, got 0"),
    (["smoke", "--run-id", "fedcba9876543210fedcba9876543210"], "is not a trial of sweep 'smoke'"),
    (["smoke", "--top-k", "0"], "--top-k: must be at least 1, got 0"),
    (["smoke", "--epochs", "-1"], "--epochs: must be at least 1"),
    (["smoke", "--name", "../escape"], "--name: '../escape' is not a name"),
    (["smoke", "--resume"], "--resume: no confirmation named 'smoke-confirm'"),
    (["empty"], "has no finished trials"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(store, capsys, monkeypatch, args, message):
    work, uri = store
    _sweep_without_finished_trials(uri)
    monkeypatch.chdir(work)
    before = runs_by_kind(uri)[1]
    code = main(["confirm", *args, "--tracking-uri", uri])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (work / "mfsearch_runs").exists()                      # no Tune folder, no state file
    after = runs_by_kind(uri)[1]
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}   # no run
