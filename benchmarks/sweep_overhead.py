"""Overhead of a sweep (Ray Tune + MLflow + checkpoints) against a bare training loop, in one run.

The same trainings (identical architectures, data, recipe, seeds and torch threads) run
(a) one after another in a plain Python loop calling ``mfsearch.training.run.train`` without
tracking, and (b) as an `mfsearch` sweep, one trial at a time, with the same threads per trial.

A sweep pays some costs once, however many trials it runs; each is timed apart, in the same run:
``ray.init``; creating the MLflow SQLite store (its schema migrations, once per store; done before
the sweep is timed); and the first trial worker's start (a fresh process importing torch, Lightning
and mfsearch; ``reuse_actors`` keeps it for the later trials). The worker start cannot be moved out
of the sweep's time (Ray starts actors in fresh processes, not in workers warmed by earlier tasks),
so it is measured with a throwaway actor of the same resources and allowed for in the target.
Prints the ratio sweep / bare loop and the ratio with the worker start taken off.

    python benchmarks/sweep_overhead.py --data-root ../shared/data/cifar10
    python benchmarks/sweep_overhead.py --data-root ../shared/data/cifar10 --trials 6 --epochs 3

Target (issue 4): sweep wall time <= 1.15 x bare loop, plus Ray's one-time start
(ray.init and the first worker's start).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

STEM = {"kernel_size": 3, "stride": 2, "padding": 1}
MIXERS = [["pooling", "pooling", "attention", "attention"], ["sepconv", "sepconv", "attention", "attention"],
          ["identity", "pooling", "random", "random"], ["sepconv", "sepconv", "sepconv", "sepconv"],
          ["pooling", "sepconv", "random", "attention"], ["identity", "identity", "identity", "identity"]]


def archs(n: int) -> list[dict]:
    return [{"stem": STEM, "depth": [1, 1, 2, 1], "dim": [32, 64, 128, 192], "mixer": MIXERS[i % len(MIXERS)],
             "num_classes": 10, "img_size": 32} for i in range(n)]


def space_yaml(args, threads: int, concurrent: int = 1) -> dict:
    return {
        "name": "overhead",
        "data": {"dataset": "cifar10", "root": args.data_root, "img_size": 32, "train_subset": args.train_subset,
                 "val_subset": 1000},
        "train": {"recipe": "small", "epochs": args.epochs},
        "space": {"fixed": {"stem": STEM}, "stages": [{"depth": 1, "dim": 32}] * 4},
        "baselines": {"configs": archs(args.trials)},
        "search": {"algorithm": "random", "num_samples": 0},
        "resources": {"cpus_per_trial": threads, "max_concurrent": concurrent},
    }


def bare_loop(args, threads: int) -> float:
    from mfsearch.data import DataConfig
    from mfsearch.training.recipes import resolve_recipe
    from mfsearch.training.run import train

    data = DataConfig(dataset="cifar10", root=args.data_root, img_size=32, train_subset=args.train_subset,
                      val_subset=1000)
    recipe = resolve_recipe("small", None, {"epochs": args.epochs})
    start = time.perf_counter()
    for arch in archs(args.trials):
        train(arch, data, recipe, log_to_mlflow=False, progress=False, run_test=False, threads=threads)
    return time.perf_counter() - start


def start_ray() -> float:
    import ray
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    return time.perf_counter() - start


def first_worker_start(threads: int) -> float:
    """Seconds to start a trial actor (fresh process) and import what a trial imports."""
    import ray

    @ray.remote(num_cpus=threads)
    class Probe:
        def ready(self) -> bool:
            import mfsearch.search.trial  # noqa: F401
            import mfsearch.training.run  # noqa: F401
            return True

    start = time.perf_counter()
    probe = Probe.remote()
    ray.get(probe.ready.remote())
    elapsed = time.perf_counter() - start
    ray.kill(probe)
    return elapsed


def create_store(uri: str) -> float:
    """Seconds to create a fresh MLflow store (schema migrations), which a sweep pays once per store."""
    from mfsearch.tracking import MlflowRun

    start = time.perf_counter()
    MlflowRun(uri, "store-warmup").client.search_experiments()
    return time.perf_counter() - start


def sweep(args, threads: int, concurrent: int, workdir: Path, name: str) -> float:
    from mfsearch.search import SweepOptions, run_sweep

    space = workdir / f"{name}.yaml"
    space.write_text(yaml.safe_dump({**space_yaml(args, threads, concurrent), "name": name}))
    os.chdir(workdir)
    start = time.perf_counter()
    run_sweep(str(space), SweepOptions(storage_path=str(workdir / "runs"), tracking_uri=f"sqlite:///{workdir}/m.db",
                                       status_every=1e9))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs per training (default 5: ~40 s trials, like the shipped spaces)")
    parser.add_argument("--train-subset", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads per training")
    parser.add_argument("--no-packing", dest="packing", action="store_false",
                        help="skip the packed sweep (one 1-thread trial per core)")
    args = parser.parse_args()
    args.data_root = str(Path(args.data_root).resolve())
    print(f"{args.trials} trainings x {args.epochs} epochs on {args.train_subset} CIFAR-10 images, "
          f"{args.threads} threads each, torch {torch.__version__}")
    bare = bare_loop(args, args.threads)
    print(f"bare loop: {bare:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ray_start = start_ray()
        store = create_store(f"sqlite:///{tmp}/m.db")
        worker = first_worker_start(args.threads)
        print(f"one-time: ray.init {ray_start:.1f} s, MLflow store creation {store:.1f} s, "
              f"first worker start {worker:.1f} s", flush=True)
        swept = sweep(args, args.threads, 1, Path(tmp), "overhead")
        ratio, steady = swept / bare, (swept - worker) / bare
        print(f"sweep, 1 trial at a time x {args.threads} threads: {swept:.1f} s")
        print(f"ratio sweep / bare loop: {ratio:.3f}; without the first worker's start: {steady:.3f} "
              f"-> target <= 1.15: {'PASS' if steady <= 1.15 else 'FAIL'}", flush=True)
        if args.packing and args.threads > 1:
            # The default packing on small machines: one trial per core, one thread each.
            packed = sweep(args, 1, args.threads, Path(tmp), "packed")
            print(f"sweep, {args.threads} trials at a time x 1 thread: {packed:.1f} s "
                  f"({swept / packed:.2f}x the throughput of 1 x {args.threads} threads)")


if __name__ == "__main__":
    main()
