"""The one door to MLflow (``mfsearch.tracking.Store``): concurrent first use of a fresh store,
experiment-creation races, retries through a store that is briefly unusable, and that no other
package imports MLflow."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from mfsearch.errors import MfsearchError
from mfsearch.tracking import Store

ROOT = Path(__file__).resolve().parents[1]
TINY = {"img_size": 32, "num_classes": 10, "stages": [
    {"depth": 1, "dim": 16, "mixer": "identity"}, {"depth": 1, "dim": 32, "mixer": "pooling"}]}


def test_only_the_tracking_package_imports_mlflow():
    importers = []
    for path in sorted((ROOT / "mfsearch").rglob("*.py")):
        if re.search(r"^\s*(import|from) mlflow", path.read_text(), re.MULTILINE):
            importers.append(path.relative_to(ROOT / "mfsearch").parts[0])
    assert importers and set(importers) == {"tracking"}


def test_tag_names_are_defined_once():
    """Tag names live in tracking/tags.py; elsewhere they are imported, never spelt out."""
    spelt = []
    for path in sorted((ROOT / "mfsearch").rglob("*.py")):
        if path.name == "tags.py":
            continue
        for line in path.read_text().splitlines():
            if re.search(r"""["']mfsearch\.[a-z_]+["']|["']mlflow\.parentRunId["']""", line) and "getLogger" not in line:
                spelt.append(f"{path.name}: {line.strip()}")
    assert spelt == []


STORE_WORKER = textwrap.dedent("""
    import sys
    from mfsearch.tracking import MlflowRun
    run = MlflowRun(sys.argv[1], "race", run_name=sys.argv[2]).start()
    run.log_metrics({"x": 1.0}, step=0)
    run.finish()
""")


def test_processes_racing_on_a_fresh_store_and_experiment_all_succeed(tmp_path):
    """Before the door: 'table latest_metrics already exists' / 'Experiment(name=race) already exists'."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", STORE_WORKER, uri, f"w{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    store = Store.open(uri, must_exist=True)
    runs = store.search_runs([store.experiment("race").experiment_id])
    assert sorted(r.run_name for r in runs) == ["w0", "w1", "w2", "w3"]
    assert all(r.status == "FINISHED" and r.metrics == {"x": 1.0} for r in runs)
    assert store.experiment_names().count("race") == 1


@pytest.mark.slow
def test_several_trains_started_at_once_on_one_fresh_store_all_succeed(tmp_path, cifar10_root):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(yaml.safe_dump(TINY))
    db = tmp_path / "mlflow.db"
    args = ["train", str(arch), "--data", "imagefolder", "--data-root", str(cifar10_root), "--epochs", "1",
            "--train-subset", "100", "--val-subset", "50", "--set", "data.test_subset=50", "--batch-size", "25",
            "--tracking-uri", f"sqlite:///{db}", "--experiment", "together", "--no-progress"]
    procs = [subprocess.Popen([sys.executable, "-m", "mfsearch.cli.main", *args, "--run-name", f"t{i}"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    store = Store.open(f"sqlite:///{db}", must_exist=True)
    runs = store.search_runs([store.experiment("together").experiment_id])
    assert sorted(r.run_name for r in runs) == ["t0", "t1", "t2"]
    assert all(r.status == "FINISHED" and "val/acc1" in r.metrics for r in runs)


def test_a_locked_sqlite_store_is_waited_for_not_failed(tmp_path, monkeypatch):
    """A writer holding the database lock (another process mid-transaction) delays a call; it
    does not fail it."""
    import sqlite3

    monkeypatch.setenv("MFSEARCH_TRACKING_RETRY_S", "60")
    uri = f"sqlite:///{tmp_path / 'busy.db'}"
    store = Store.open(uri)
    experiment_id = store.ensure_experiment("busy")
    holder = sqlite3.connect(tmp_path / "busy.db", timeout=0, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(3.0, holder.rollback)
    release.start()
    started = time.monotonic()
    run = store.create_run(experiment_id, "after-the-lock", {})
    waited = time.monotonic() - started
    release.join()
    holder.close()
    assert store.run(run.run_id).run_name == "after-the-lock"
    assert waited >= 2.5   # it really was blocked, then went through


def test_a_store_that_stays_unusable_fails_with_one_line_after_the_deadline(tmp_path, monkeypatch, capsys):
    import sqlite3

    monkeypatch.setenv("MFSEARCH_TRACKING_RETRY_S", "1")
    uri = f"sqlite:///{tmp_path / 'stuck.db'}"
    store = Store.open(uri)
    experiment_id = store.ensure_experiment("stuck")
    holder = sqlite3.connect(tmp_path / "stuck.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(MfsearchError) as info:
            store.create_run(experiment_id, "never", {})
    finally:
        holder.rollback()
        holder.close()
    assert str(info.value).startswith(f"MLflow store {uri}: ") and "database is locked" in str(info.value)
    assert "\n" not in str(info.value)
    assert "SQLAlchemy" not in capsys.readouterr().err   # MLflow's multi-line error log stays quiet


def test_reading_commands_never_create_a_store(tmp_path):
    with pytest.raises(MfsearchError, match="no MLflow store at"):
        Store.open(f"sqlite:///{tmp_path / 'absent.db'}", must_exist=True)
    assert list(tmp_path.iterdir()) == []


def test_unknown_run_is_none_not_an_error(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.run("0" * 32) is None
