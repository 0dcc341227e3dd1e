"""Mid-training resume: a training interrupted after an epoch continues from its checkpoint and ends
exactly where an uninterrupted one does (CPU, same seeds) — library, `mfsearch train --resume`, and
a Ray Tune trial retried after a failure."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mfsearch.cli.main import main

TINY = {"num_classes": 10, "img_size": 32, "stem": {"kernel_size": 3, "stride": 2, "padding": 1},
        "depth": [1, 1, 1], "dim": [32, 64, 96], "mixer": ["sepconv", "sepconv", "attention"]}
COMPARED = ("train/loss", "val/loss", "val/acc1", "val/acc5", "lr")
EPOCHS = 6

pytestmark = pytest.mark.slow


class Interrupted(Exception):
    pass


def data_config(root: Path):
    from mfsearch.data import DataConfig
    return DataConfig(dataset="cifar10", root=str(root), train_subset=500, val_subset=200, test_subset=200)


def every_rng_recipe():
    """The small recipe plus every switch that draws random numbers, each from another generator:
    RandAugment (Python's), Mixup/CutMix (numpy's), drop path and crops/flips (torch's), and EMA."""
    from mfsearch.training.recipes import resolve_recipe
    return resolve_recipe("small", None, {
        "epochs": EPOCHS, "batch_size": 50, "lr": 3e-3, "warmup_epochs": 1.0, "ema": True, "ema_decay": 0.9,
        "mixup": 0.2, "cutmix": 0.2, "drop_path_rate": 0.1, "augment.rand_augment": "rand-m6-mstd0.5-inc1"})


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_interrupted_training_resumes_exactly(tmp_path, cifar10_root):
    from mfsearch.training.checkpoint import CHECKPOINT_NAME
    from mfsearch.training.run import train

    data, recipe = data_config(cifar10_root), every_rng_recipe()
    t0 = time.perf_counter()
    full = train(TINY, data, recipe, log_to_mlflow=False, progress=False, checkpoint_dir=tmp_path / "full")
    t_full = time.perf_counter() - t0

    def stop_after_4(metrics, epoch, model):
        if epoch == 4:
            raise Interrupted  # after epoch 4's checkpoint was written: the sinks run after it
    with pytest.raises(Interrupted):
        train(TINY, data, recipe, log_to_mlflow=False, progress=False, checkpoint_dir=tmp_path / "cut",
              sinks=[stop_after_4])
    checkpoint = tmp_path / "cut" / CHECKPOINT_NAME
    assert torch.load(checkpoint, weights_only=True, mmap=True)["epoch"] == 3  # Lightning counts from 0

    seen: list[int] = []
    t0 = time.perf_counter()
    resumed = train(TINY, data, recipe, log_to_mlflow=False, progress=False, checkpoint_dir=tmp_path / "cut",
                    resume_from=checkpoint, sinks=[lambda metrics, epoch, model: seen.append(epoch)])
    t_resumed = time.perf_counter() - t0
    print(f"\nuninterrupted {t_full:.1f}s, resumed (2 of {EPOCHS} epochs) {t_resumed:.1f}s")

    assert seen == [5, 6]  # nothing redone, nothing reported twice
    assert [row["epoch"] for row in resumed.history] == list(range(1, EPOCHS + 1))
    for mine, theirs in zip(resumed.history, full.history, strict=True):
        assert {k: mine[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}, mine["epoch"]
    assert {k: v for k, v in resumed.metrics.items() if k.startswith("test/")} == \
        {k: v for k, v in full.metrics.items() if k.startswith("test/")}
    assert_same_state(resumed.model.state_dict(), full.model.state_dict())  # the EMA weights, evaluated
    # The raw weights, optimizer moments and LR schedule too: compare the two last checkpoints.
    a = torch.load(tmp_path / "full" / CHECKPOINT_NAME, weights_only=True)
    b = torch.load(checkpoint, weights_only=True)
    assert_same_state(a["state_dict"], b["state_dict"])
    assert a["lr_schedulers"] == b["lr_schedulers"] and a["global_step"] == b["global_step"]
    moments = (a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values())
    for sa, sb in zip(*moments, strict=True):
        assert_same_state(sa, sb)

    # A training stopped after its last epoch (e.g. a trial that failed while testing) trains nothing more.
    again: list[int] = []
    done = train(TINY, data, recipe, log_to_mlflow=False, progress=False, checkpoint_dir=tmp_path / "full",
                 resume_from=tmp_path / "full" / CHECKPOINT_NAME, sinks=[lambda m, epoch, _: again.append(epoch)])
    assert again == [] and done.history == full.history and done.metrics["test/acc1"] == full.metrics["test/acc1"]
    assert_same_state(done.model.state_dict(), full.model.state_dict())


# ---- `mfsearch train --resume` ---------------------------------------------------------------------

def cli_args(arch: Path, root: Path, db: Path, experiment: str) -> list[str]:
    return ["train", str(arch), "--data", "cifar10", "--data-root", str(root), "--epochs", str(EPOCHS),
            "--batch-size", "50", "--train-subset", "500", "--val-subset", "200", "--set", "data.test_subset=200",
            "--set", "lr=3e-3", "--set", "ema=true", "--set", "ema_decay=0.9", "--tracking-uri", f"sqlite:///{db}",
            "--experiment", experiment, "--no-progress"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def epochs_in(checkpoint: Path) -> int:
    try:
        state = torch.load(checkpoint, weights_only=True, mmap=True)
    except FileNotFoundError:  # not there yet (a file being replaced stays readable: rename is atomic)
        return 0
    return len(state["callbacks"]["EpochReporter"]["history"])


def test_cli_resume_after_sigkill(tmp_path, cifar10_root):
    from mlflow.tracking import MlflowClient
    from safetensors.torch import load_file

    arch = tmp_path / "tiny.yaml"
    arch.write_text(yaml.safe_dump(TINY))
    db = tmp_path / "mlflow.db"
    t0 = time.perf_counter()
    full = cli(*cli_args(arch, cifar10_root, db, "full"), cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    t_full = time.perf_counter() - t0
    assert not (tmp_path / "mfsearch_checkpoints").exists()  # removed once the run finished

    # Killed (SIGKILL: no handler runs, the run stays RUNNING) once epoch 4's checkpoint is on disk.
    proc = subprocess.Popen([sys.executable, "-m", "mfsearch.cli.main", *cli_args(arch, cifar10_root, db, "cut")],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    checkpoint = None
    while time.time() < deadline and proc.poll() is None:
        found = [p for p in (tmp_path / "mfsearch_checkpoints").glob("*/last.ckpt")]
        if found and epochs_in(found[0]) >= 4:
            checkpoint = found[0]
            break
        time.sleep(0.05)
    assert checkpoint is not None, proc.stderr.read().decode()[-3000:] if proc.poll() is not None else "timeout"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = checkpoint.parent.name
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    assert client.get_run(run_id).info.status == "RUNNING"
    killed_at = epochs_in(checkpoint)
    assert killed_at in (4, 5)  # at most the epoch it was in when killed is redone

    t0 = time.perf_counter()
    out = cli("train", "--resume", run_id, "--tracking-uri", f"sqlite:///{db}", "--no-progress", cwd=tmp_path)
    t_resumed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"\nCLI uninterrupted {t_full:.1f}s, resumed from epoch {killed_at} {t_resumed:.1f}s")

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mfsearch.resumed_from_epoch"] == str(killed_at)
    assert not checkpoint.parent.exists()
    reference = client.search_runs([client.get_experiment_by_name("full").experiment_id])[0]
    for key in ("val/acc1", "val/loss", "train/loss", "lr", "epoch"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        assert [step for step, _ in history] == list(range(1, EPOCHS + 1)), key  # each epoch exactly once
        expected = sorted((m.step, m.value) for m in client.get_metric_history(reference.info.run_id, key))
        assert history == expected, key
    for key in ("test/acc1", "test/loss", "cost/params"):
        assert run.data.metrics[key] == reference.data.metrics[key], key
    weights = [load_file(client.download_artifacts(r, "weights.safetensors", str(tmp_path / r)))
               for r in (run_id, reference.info.run_id)]
    assert_same_state(*weights)


def test_cli_resume_refusals(tmp_path, cifar10_root, capsys):
    from mfsearch.tracking import MlflowRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    finished = MlflowRun(uri, "refusals").start()
    finished.finish()
    untagged = MlflowRun(uri, "refusals").start()
    gone = MlflowRun(uri, "refusals").start()
    gone.set_tags({"mfsearch.checkpoint": str(tmp_path / "nowhere" / gone.run_id / "last.ckpt")})

    live = MlflowRun(uri, "refusals").start()
    folder = tmp_path / "mfsearch_checkpoints" / live.run_id
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"")
    (folder / "run.json").write_text("{}")
    live.set_tags({"mfsearch.checkpoint": str(folder / "last.ckpt")})

    cases = [
        (["--resume", "0123456789abcdef0123456789abcdef"], "no run 0123456789abcdef0123456789abcdef"),
        (["--resume", finished.run_id], "already finished"),
        (["--resume", untagged.run_id], "has no training checkpoint"),
        (["--resume", gone.run_id], "is missing (its folder is gone)"),
        (["caformer_s18", "--resume", gone.run_id], "with its own settings; drop arch"),
        (["--resume", gone.run_id, "--epochs", "9"], "drop --epochs"),
        ([], "give an architecture"),
    ]
    for args, message in cases:
        code = main(["train", *args, "--tracking-uri", uri])
        err = capsys.readouterr().err
        assert code == 2, args
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)

    from mfsearch.training.resume import locked
    with locked(folder, live.run_id):  # as a process still training the run holds it
        code = main(["train", "--resume", live.run_id, "--tracking-uri", uri])
    captured = capsys.readouterr()
    assert code == 2 and "is being trained by another live process" in captured.err
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_backfill_logs_only_the_epochs_mlflow_lacks(tmp_path):
    # A process killed between writing epoch k's checkpoint and logging epoch k to MLflow.
    from mfsearch.data import DataConfig
    from mfsearch.training.checkpoint import CHECKPOINT_NAME
    from mfsearch.training.recipes import resolve_recipe
    from mfsearch.training.resume import backfill
    from mfsearch.training.run import train

    data = DataConfig(dataset="synthetic", synthetic_size=200, img_size=32, val_fraction=0.25)
    recipe = resolve_recipe("small", None, {"epochs": 3, "batch_size": 50})
    result = train(TINY, data, recipe, log_to_mlflow=False, progress=False, run_test=False, checkpoint_dir=tmp_path)

    class FakeRun:
        run_id = "r"
        logged: list = []

        class store:
            @staticmethod
            def metric_history(run_id, key):
                assert key == "epoch"
                return [(1, 1.0), (2, 2.0)]

        def log_metrics(self, metrics, step):
            self.logged.append((step, dict(metrics)))

    run = FakeRun()
    assert backfill(run, tmp_path / CHECKPOINT_NAME) == 3
    assert run.logged == [(3, result.history[2])]


# ---- Ray Tune: a trial retried after a failure continues from its checkpoint ---------------------

def test_tune_trial_retried_after_failure_continues(tmp_path, cifar10_root):
    import ray
    from ray import tune
    from safetensors.torch import load_file

    from mfsearch.search.ray_cluster import start_ray

    epochs = 4
    spec_raw = {
        "name": "resume",
        "data": {"dataset": "cifar10", "root": str(cifar10_root), "img_size": 32, "train_subset": 500,
                 "val_subset": 200},
        "train": {"recipe": "small", "epochs": epochs,
                  "overrides": {"batch_size": 50, "ema": True, "ema_decay": 0.9, "drop_path_rate": 0.1}},
        "space": {"fixed": {"stem": {"kernel_size": 3, "stride": 2, "padding": 1}},
                  "stages": [{"depth": 1, "dim": 32, "mixer": "sepconv"}, {"depth": 1, "dim": 64, "mixer": "sepconv"},
                             {"depth": 1, "dim": 96, "mixer": "attention"}]},
        "baselines": "none",
    }

    from mfsearch.search.space import parse_search_spec
    from mfsearch.search.trial import TrialPlan

    spec = parse_search_spec(spec_raw, "test", {})
    plan = TrialPlan(data=spec.data, recipe=spec.recipe, threads=1)

    def flaky(config, plan):
        # Runs in a Ray worker (pickled by value: a local function). The first attempt of the trial
        # with `fail_after` dies right after reporting that epoch, as on a lost node.
        import mfsearch.training.run as run_module
        from mfsearch.search.trial import run_trial

        real = run_module.train
        marker = Path(config["marker"])

        def train(*args, sinks=(), **kwargs):
            def fail(metrics, epoch, model):
                if epoch == config["fail_after"] and not marker.exists():
                    marker.write_text("failed once")
                    raise RuntimeError("simulated node loss")
            return real(*args, sinks=[*sinks, fail], **kwargs)
        run_module.train = train
        try:
            run_trial(config, plan)
        finally:
            run_module.train = real

    candidate = {"arch": TINY, "family": "searched", "params": {}}
    start_ray(None, num_cpus=2)
    try:
        t0 = time.perf_counter()
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(flaky, plan=plan), {"cpu": 1}),
            param_space={"candidate": candidate, "marker": str(tmp_path / "failed"),
                         "fail_after": tune.grid_search([2, 0])},   # 0: never fails (the reference)
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(name="resume", storage_path=str(tmp_path / "runs"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=1),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        results = tuner.fit()
        print(f"\nTune: 2 trials of {epochs} epochs, one retried, {time.perf_counter() - t0:.1f}s")
    finally:
        ray.shutdown()
    assert (tmp_path / "failed").exists()
    by_fail = {r.config["fail_after"]: r for r in results}
    assert by_fail[2].error is None and by_fail[0].error is None
    for result in by_fail.values():
        # Every epoch reported exactly once: the retry resumed after epoch 2 rather than at epoch 1.
        assert list(result.metrics_dataframe["epochs_reached"]) == list(range(1, epochs + 1))
    retried, reference = by_fail[2], by_fail[0]
    for key in ("train/loss", "val/loss", "val/acc1", "val/acc5"):
        assert list(retried.metrics_dataframe[key]) == list(reference.metrics_dataframe[key]), key
    weights = [load_file(str(Path(r.checkpoint.path) / "weights.safetensors")) for r in (retried, reference)]
    assert_same_state(*weights)
