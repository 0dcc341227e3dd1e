"""The cluster path, run for real on this machine (``tests/cluster.py``): a Ray head and a second
Ray node, an MLflow server on PostgreSQL with proxied artifacts, shared storage. Then the fault
drills on it: a node killed mid-sweep, the tracking server killed and restarted, the driver killed
and the sweep resumed. Each drill checks that every trial is in MLflow exactly once, finished, with
nothing lost, and prints a line of the drill table (``pytest -s -m cluster`` shows them)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster import LocalCluster, dump, missing_parts

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke.yaml"
TRIALS = 5      # smoke.yaml: 2 baselines + 3 searched
# Three epochs per trial, so that a drill lands while trials are mid-training; two retries for
# trials a lost node takes down.
DRILL_SETS = ["--epochs", "3", "--set", "search.max_failures=2"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = missing_parts()
    if why:
        pytest.skip(why)
    c = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield c
    c.stop()


def sweep_runs(cluster: LocalCluster, name: str) -> tuple[list[dict], list[dict]]:
    runs = cluster.runs(name)
    parents = [r for r in runs if r["tags"].get("mfsearch.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r["tags"]]
    return parents, children


def assert_every_trial_once(cluster: LocalCluster, name: str, epochs: int) -> dict:
    """Every trial exactly once in PostgreSQL, finished, each epoch's metric logged exactly once."""
    parents, children = sweep_runs(cluster, name)
    assert len(parents) == 1 and parents[0]["status"] == "FINISHED", parents
    trial_ids = [c["tags"]["mfsearch.trial_id"] for c in children]
    assert len(children) == TRIALS and len(set(trial_ids)) == TRIALS, trial_ids
    assert all(c["status"] == "FINISHED" and c["tags"]["mfsearch.status"] == "completed" for c in children)
    for c in children:
        assert cluster.metric_steps(c["run_id"], "val/acc1") == list(range(1, epochs + 1)), c["tags"]
    return {"lost": TRIALS - len(set(trial_ids)), "duplicated": len(children) - len(set(trial_ids))}


def wait_until_trials_finished(cluster: LocalCluster, name: str, n: int, driver, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.alive(), driver.tail()
        try:
            done = [c for c in sweep_runs(cluster, name)[1] if c["status"] == "FINISHED"]
        except Exception:  # noqa: BLE001 — the experiment may not exist yet
            done = []
        if len(done) >= n:
            return
        time.sleep(1)
    raise TimeoutError(f"{n} trials of {name} not finished after {timeout} s: {driver.tail()}")


def test_sweep_across_two_nodes_into_postgres_with_proxied_artifacts(cluster, cifar10_root):
    started = time.monotonic()
    out = cluster.mfsearch(*cluster.sweep_args(SMOKE, cifar10_root, "--name", "two-nodes"))
    assert out.returncode == 0, out.stderr[-3000:] + dump(cluster)
    wall = time.monotonic() - started
    assert_every_trial_once(cluster, "two-nodes", epochs=1)
    _, children = sweep_runs(cluster, "two-nodes")
    nodes = {c["tags"].get("mfsearch.node_id") for c in children}
    assert None not in nodes and len(nodes) == 2, nodes          # both nodes trained trials
    assert all(c["tags"]["mfsearch.host"] for c in children)
    # Artifacts went through the server (mlflow-artifacts:), landing in its destination folder.
    assert all(c["artifact_uri"].startswith("mlflow-artifacts:") for c in children)
    assert len(list(cluster.artifacts.rglob("weights.safetensors"))) == TRIALS
    assert len(list(cluster.artifacts.rglob("arch.yaml"))) >= TRIALS
    print(f"\ntwo-node sweep: {TRIALS} trials on {len(nodes)} nodes in {wall:.0f} s")


def test_drill_second_node_killed_mid_sweep(cluster, cifar10_root):
    driver = cluster.spawn_driver(cluster.sweep_args(SMOKE, cifar10_root, "--name", "node-drill", *DRILL_SETS))
    try:
        wait_until_trials_finished(cluster, "node-drill", 1, driver)
        killed = time.monotonic()
        cluster.procs["ray-worker"].kill9()                    # the node and every trial on it
        driver.popen.wait(timeout=900)
        recovery = time.monotonic() - killed
    finally:
        cluster.start_ray_worker()                              # for the next drill
    assert driver.popen.returncode == 0, driver.tail(3000) + dump(cluster)
    counts = assert_every_trial_once(cluster, "node-drill", epochs=3)
    _, children = sweep_runs(cluster, "node-drill")
    retried = [c for c in children if int(c["tags"].get("mfsearch.retries", 0)) > 0]
    assert retried, "no trial was running on the killed node"   # the drill really took a trial down
    print(f"\n| kill -9 the second Ray node | {recovery:.0f} s to the sweep's end, {len(retried)} trial(s) retried "
          f"on the other node | lost {counts['lost']} | duplicated {counts['duplicated']} |")
    cluster.wait_for_nodes(2)


def test_drill_tracking_server_killed_and_restarted(cluster, cifar10_root):
    driver = cluster.spawn_driver(cluster.sweep_args(SMOKE, cifar10_root, "--name", "mlflow-drill", *DRILL_SETS))
    wait_until_trials_finished(cluster, "mlflow-drill", 1, driver)
    cluster.procs["mlflow"].kill9()
    down = time.monotonic()
    time.sleep(15)                                              # trials go on; the driver's writes wait
    cluster.start_mlflow()
    back = time.monotonic() - down
    driver.popen.wait(timeout=900)
    assert driver.popen.returncode == 0, driver.tail(3000) + dump(cluster)
    assert "retrying for up to" in driver.tail(20000)            # it noticed, waited, went on
    counts = assert_every_trial_once(cluster, "mlflow-drill", epochs=3)
    print(f"\n| kill -9 the MLflow server, restart after 15 s | {back:.0f} s down, buffered by the driver's "
          f"retries | lost {counts['lost']} | duplicated {counts['duplicated']} |")


def test_drill_driver_killed_then_resumed(cluster, cifar10_root):
    driver = cluster.spawn_driver(cluster.sweep_args(SMOKE, cifar10_root, "--name", "driver-drill", *DRILL_SETS))
    wait_until_trials_finished(cluster, "driver-drill", 1, driver)
    driver.kill9()
    killed = time.monotonic()
    resume = ["run", "--resume", "driver-drill", "--address", cluster.ray_address, "--storage-path",
              str(cluster.storage)]
    out = cluster.mfsearch(*resume)
    trusted = False
    if out.returncode == 2 and "--trust-state" in out.stderr:
        # Killed in the instant between a write and its signature: the one refusal a user meets
        # here, naming a file this sweep wrote; they resume with --trust-state.
        assert str(cluster.storage / "driver-drill") in out.stderr, out.stderr
        print(f"\nresume refused first: {out.stderr.strip()}")
        trusted = True
        out = cluster.mfsearch(*resume, "--trust-state")
    recovery = time.monotonic() - killed
    assert out.returncode == 0, out.stderr[-3000:] + dump(cluster)
    counts = assert_every_trial_once(cluster, "driver-drill", epochs=3)
    print(f"\n| kill -9 the driver, then --resume | {recovery:.0f} s to the sweep's end | lost {counts['lost']} "
          f"| duplicated {counts['duplicated']} |{' (resumed with --trust-state)' if trusted else ''}")
