"""Which searcher + scheduler finds the best accuracy-vs-MACs front for the same compute?

Runs the real `mfsearch run` on a space (default: the main job, `mixer_per_stage`) for each method
and each seed, then reports per method the hypervolume of the final front (val/acc1 up, MACs down)
as mean ± sd over seeds, the compute it used (training image-epochs, stopped trials counted at the
epochs they reached) and the wall time. Methods (search.algorithm + scheduler):

    random+fifo      random search, every trial to full fidelity
    tpe+asha         Optuna TPE, successive halving on val/acc1 alone (baselines protected)
    tpe+mo-asha      Optuna TPE, successive halving by Pareto rank over both objectives
    nsga2+mo-asha    Optuna NSGA-II, MO-ASHA

Equal compute: schedulers that stop trials get ``--samples-factor`` x the samples of FIFO (default
1.5: with grace = half the epochs and eta = 2 about half the trials stop at half fidelity, so a
stopping scheduler spends ~0.75 of a FIFO trial per sample); the table prints the compute each
method really used, so the comparison can be read at the compute it was made at.

Hypervolumes: all sweeps share one reference point (val/acc1 0 %, 1.1 x the largest MACs any
sweep compared), so the numbers compare across methods and seeds. "sweep" scores each front with
the accuracies the sweep measured (one seed, its own fidelity: what the searcher believed);
with ``--confirm-epochs E --confirm-images N`` every distinct front architecture is also trained
once more at that larger budget (seed 1, cached across methods) and "confirmed" scores the fronts
with those accuracies — what the searcher actually found.

    python benchmarks/search_quality.py --data-root ../shared/data/cifar10 --seeds 3
    python benchmarks/search_quality.py --data-root ../shared/data/cifar10 --seeds 3 \\
        --set search.num_samples=6 --confirm-epochs 8 --confirm-images 8000
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mfsearch.analysis.fronts import COST_AXES, build_front
from mfsearch.analysis.sweep_data import artifact_text, load_sweep
from mfsearch.pareto import normalized_hypervolume, pareto_indices
from mfsearch.search.space import load_search_spec

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "random+fifo": {"search.algorithm": "random", "scheduler.name": "fifo"},
    "tpe+asha": {"search.algorithm": "optuna-tpe", "scheduler.name": "asha"},
    "tpe+mo-asha": {"search.algorithm": "optuna-tpe", "scheduler.name": "mo-asha"},
    "nsga2+mo-asha": {"search.algorithm": "optuna-nsga2", "scheduler.name": "mo-asha"},
}
MAXIMIZE = (True, False)


def run_sweep(space: str, name: str, sets: dict, out: Path, data_root: str) -> float:
    cmd = [sys.executable, "-m", "mfsearch.cli.main", "run", space, "--name", name, "--data-root", data_root,
           "--storage-path", str(out / "runs"), "--tracking-uri", f"sqlite:///{out / 'mlflow.db'}"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep {name} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def front_points(sweep) -> tuple[list, list]:
    front = build_front(sweep.finished, COST_AXES[0])
    return list(front.compared), [m.trial for m in front.members]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "mixer_per_stage.yaml"))
    p.add_argument("--data-root", required=True)
    p.add_argument("--methods", default="random+fifo,tpe+asha,tpe+mo-asha", help=f"of {', '.join(METHODS)}")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--samples-factor", type=float, default=1.5, help="samples of stopping schedulers / FIFO's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="space overrides for every sweep")
    p.add_argument("--confirm-epochs", type=int, help="also score fronts at this budget (epochs) ...")
    p.add_argument("--confirm-images", type=int, help="... on this many training images")
    p.add_argument("--workers", type=int, default=2, help="parallel confirmation trainings")
    p.add_argument("--out", default="search_quality_out", help="working folder (MLflow store, Tune runs, results)")
    args = p.parse_args()

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    common = dict(item.split("=", 1) for item in args.set)
    spec = load_search_spec(args.space, {k: yaml.safe_load(v) for k, v in common.items()})
    base_samples = spec.search.num_samples
    uri = f"sqlite:///{out / 'mlflow.db'}"
    records = []
    for method in args.methods.split(","):
        sets = dict(common, **METHODS[method])
        if METHODS[method]["scheduler.name"] != "fifo":
            sets["search.num_samples"] = round(base_samples * args.samples_factor)
        for seed in range(args.seeds):
            name = f"sq-{method.replace('+', '-')}-s{seed}"
            wall = run_sweep(args.space, name, {**sets, "search.seed": seed}, out, args.data_root)
            sweep = load_sweep(name, uri)
            compared, members = front_points(sweep)
            images = spec.data.train_subset or 0
            records.append({"method": method, "seed": seed, "name": name, "wall_s": wall,
                            "image_epochs": sum(t.epochs for t in sweep.trials) * images,
                            "trials": len(sweep.trials), "front": [t.run_id for t in members],
                            "points": {t.run_id: (t.metrics["val/acc1"], t.metrics["cost/macs"]) for t in compared},
                            "arch": {t.run_id: artifact_text(uri, t.run_id, "arch.yaml") for t in members}})
            print(f"{name}: {len(sweep.trials)} trials, front {len(members)}, {wall / 60:.1f} min", flush=True)

    reference = (0.0, 1.1 * max(c for r in records for _, c in r["points"].values()))
    ideal = (100.0, 0.0)
    for r in records:
        r["hv_sweep"] = normalized_hypervolume([r["points"][i] for i in r["front"]], MAXIMIZE, reference, ideal)

    if args.confirm_epochs and args.confirm_images:
        from fidelity_ranking import _train_one

        distinct = {}
        for r in records:
            for run_id, text in r["arch"].items():
                distinct.setdefault(text, None)
        spec_raw = {**spec.raw, "data": {**spec.raw.get("data", {}), "root": args.data_root}}
        jobs = [{"name": str(i), "arch": yaml.safe_load(text), "images": args.confirm_images,
                 "epochs": args.confirm_epochs, "seed": 1, "spec_raw": spec_raw} for i, text in enumerate(distinct)]
        print(f"confirming {len(jobs)} distinct front architectures at {args.confirm_images} x {args.confirm_epochs}",
              flush=True)
        with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            accs = {j["name"]: r["val_acc1"] for j, r in zip(jobs, pool.map(_train_one, jobs))}
        by_text = {text: accs[str(i)] for i, text in enumerate(distinct)}
        for r in records:
            points = [(by_text[r["arch"][i]], r["points"][i][1]) for i in r["front"]]
            r["hv_confirmed"] = normalized_hypervolume([points[k] for k in pareto_indices(points, MAXIMIZE)],
                                                       MAXIMIZE, reference, ideal)

    print(f"\nhypervolume (val/acc1 vs MACs; reference 0 %, {reference[1] / 1e6:.2f} M MACs; share of the box), "
          f"mean ± sd over {args.seeds} seeds:")
    head = f"{'method':>15} {'HV sweep':>16} {'HV confirmed':>16} {'trials':>7} {'image-epochs':>13} {'wall min':>9}"
    print(head)
    for method in args.methods.split(","):
        rs = [r for r in records if r["method"] == method]

        def ms(key: str) -> str:
            vals = [r[key] for r in rs if key in r]
            if not vals:
                return "-"
            return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0:.4f}"
        print(f"{method:>15} {ms('hv_sweep'):>16} {ms('hv_confirmed'):>16} "
              f"{statistics.mean(r['trials'] for r in rs):>7.1f} {statistics.mean(r['image_epochs'] for r in rs):>13,.0f} "
              f"{statistics.mean(r['wall_s'] for r in rs) / 60:>9.1f}")
    (out / "search_quality.json").write_text(json.dumps({"reference": reference, "records": records}, indent=2))
    print(f"\nevery sweep's result: {out / 'search_quality.json'}")


if __name__ == "__main__":
    main()
