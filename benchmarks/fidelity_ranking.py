"""Which sweep fidelity ranks architectures the way a longer training does?

Trains a fixed set of architectures of a search space — the paper's baselines plus searched
candidates stratified across MACs — at several fidelities (training images x epochs) and at a
longer reference budget, all with the same seeds, and prints per fidelity Kendall's tau and
Spearman's rho between its val/acc1 ranking and the reference's, with the compute and wall time
each fidelity costs per trial. The shipped spaces' default fidelity is chosen from this table.

    python benchmarks/fidelity_ranking.py --data-root ../shared/data/cifar10
    python benchmarks/fidelity_ranking.py --data-root ../shared/data/cifar10 \\
        --fidelities 2000x4,4000x4,8000x2 --reference 8000x8 --searched 5 --out fidelity.json

Every training runs in its own process (1 thread each, ``--workers`` at once), through the same
``train`` function a sweep trial uses; the validation split is the space's (never the test split).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import json
import multiprocessing as mp
import random
import time
from pathlib import Path

from mfsearch.analysis.stats import kendall_tau, mean_interval, spearman_rho
from mfsearch.cost import count_config
from mfsearch.search import SweepOptions, prepare_sweep
from mfsearch.search.candidates import build_arch, check_candidate, evaluate, sample_params


def parse_fidelity(text: str) -> tuple[int, int]:
    images, _, epochs = text.lower().partition("x")
    return int(images), int(epochs)


def stratified_candidates(spec, num_classes: int, img_size: int, n: int, seed: int) -> list[dict]:
    """``n`` valid, distinct candidates spread evenly over the MACs range of 400 random ones."""
    rng = random.Random(seed)
    pool, seen = [], set()
    for _ in range(4000):
        arch = build_arch(spec.space, sample_params(spec.space, rng), num_classes, img_size)
        key = json.dumps(arch, sort_keys=True)
        if key in seen or check_candidate(spec, arch) is not None:
            continue
        seen.add(key)
        pool.append((evaluate(arch)[1].macs, arch))
        if len(pool) >= 400:
            break
    pool.sort(key=lambda p: p[0])
    if n <= 0 or not pool:
        return []
    picks = [pool[round(i * (len(pool) - 1) / max(1, n - 1))][1] for i in range(n)]
    return picks


def _train_one(job: dict) -> dict:
    import torch

    from mfsearch.search.space import parse_search_spec
    from mfsearch.training.run import train

    torch.set_num_threads(1)
    spec = parse_search_spec(job["spec_raw"], "benchmark", {})
    data = dataclasses.replace(spec.data, train_subset=job["images"])
    recipe = dataclasses.replace(spec.recipe, epochs=job["epochs"], seed=job["seed"])
    start = time.perf_counter()
    result = train(job["arch"], data, recipe, log_to_mlflow=False, progress=False, run_test=False, threads=1)
    return {**{k: job[k] for k in ("name", "images", "epochs", "seed")}, "val_acc1": result.metrics["val/acc1"],
            "wall_s": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default=str(Path(__file__).resolve().parents[1] / "search_spaces" / "mixer_per_stage.yaml"))
    p.add_argument("--data-root", required=True)
    p.add_argument("--fidelities", default="2000x4,2000x8,4000x4,8000x2,16000x1",
                   help="images x epochs, comma-separated")
    p.add_argument("--reference", default="8000x8", help="the longer training ranked against (images x epochs)")
    p.add_argument("--reference-seeds", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1, help="seeds per fidelity")
    p.add_argument("--searched", type=int, default=5, help="searched candidates besides the baselines")
    p.add_argument("--candidate-seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="write every training's result and the table as JSON here")
    args = p.parse_args()

    spec, num_classes, img_size, baselines = prepare_sweep(args.space, SweepOptions(overrides={"data.root": args.data_root}))
    spec_raw = {**spec.raw, "data": {**spec.raw.get("data", {}), "root": args.data_root}}
    archs = {b.family: b.arch for b in baselines}
    for i, arch in enumerate(stratified_candidates(spec, num_classes, img_size, args.searched, args.candidate_seed)):
        archs[f"searched{i}"] = arch
    macs = {name: count_config(evaluate(a)[0]).macs for name, a in archs.items()}
    fidelities = [parse_fidelity(f) for f in args.fidelities.split(",")]
    reference = parse_fidelity(args.reference)
    jobs = []
    for images, epochs in [reference] + fidelities:
        seeds = args.reference_seeds if (images, epochs) == reference else args.seeds
        for seed in range(1, seeds + 1):
            for name, arch in archs.items():
                jobs.append({"name": name, "arch": arch, "images": images, "epochs": epochs, "seed": seed,
                             "spec_raw": spec_raw})
    print(f"{len(archs)} architectures x ({len(fidelities)} fidelities + reference {args.reference}): "
          f"{len(jobs)} trainings, {args.workers} at a time", flush=True)
    started = time.perf_counter()
    results = []
    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        for n, done in enumerate(cf.as_completed([pool.submit(_train_one, j) for j in jobs]), 1):
            r = done.result()
            results.append(r)
            print(f"[{(time.perf_counter() - started) / 60:5.1f} min] {n}/{len(jobs)} {r['name']:>14} "
                  f"{r['images']}x{r['epochs']} seed {r['seed']}: val/acc1 {r['val_acc1']:.2f} in {r['wall_s']:.0f} s",
                  flush=True)

    def scores(images: int, epochs: int) -> dict[str, float]:
        out = {}
        for name in archs:
            vals = [r["val_acc1"] for r in results if (r["name"], r["images"], r["epochs"]) == (name, images, epochs)]
            out[name] = mean_interval(vals).mean
        return out

    ref = scores(*reference)
    names = list(archs)
    rows = []
    for images, epochs in fidelities:
        s = scores(images, epochs)
        wall = [r["wall_s"] for r in results if (r["images"], r["epochs"]) == (images, epochs)]
        rows.append({"fidelity": f"{images}x{epochs}", "image_epochs": images * epochs,
                     "kendall_tau": kendall_tau([s[n] for n in names], [ref[n] for n in names]),
                     "spearman_rho": spearman_rho([s[n] for n in names], [ref[n] for n in names]),
                     "mean_wall_s": sum(wall) / len(wall), "scores": s})
    print(f"\nreference {args.reference} ({args.reference_seeds} seed(s)), val/acc1:")
    for n in sorted(names, key=lambda n: -ref[n]):
        print(f"  {n:>14}  {ref[n]:6.2f}   MACs {macs[n] / 1e6:6.2f} M")
    print(f"\n{'fidelity':>10} {'img-epochs':>10} {'tau':>6} {'rho':>6} {'wall s/trial':>12}")
    for r in rows:
        print(f"{r['fidelity']:>10} {r['image_epochs']:>10} {r['kendall_tau']:>+6.2f} {r['spearman_rho']:>+6.2f} "
              f"{r['mean_wall_s']:>12.1f}")
    print(f"\n{len(names)} architectures; tau over {len(names) * (len(names) - 1) // 2} pairs. "
          f"Total wall {(time.perf_counter() - started) / 60:.1f} min.")
    if args.out:
        Path(args.out).write_text(json.dumps({"reference": args.reference, "macs": macs, "results": results,
                                              "table": rows}, indent=2))


if __name__ == "__main__":
    main()
