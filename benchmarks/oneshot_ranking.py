"""Does a weight-sharing supernet rank architectures like stand-alone training does?

A fixed set of architectures of a one-shot space (default 12: the paper families' mixer patterns in
the space's skeleton plus searched members spread evenly over MACs, every mixer the dominant one of
at least one) is ranked four ways and each ranking is compared with a stand-alone reference
(every architecture trained from scratch at 4x the sweep fidelity, mean val/acc1 over the seeds):

    (a) one-shot     inherited val/acc1 after training the space's supernet once, with the YAML's
                     settings (train.epochs x data.train_subset x search.oneshot paths per step)
    (b) low fidelity val/acc1 of a from-scratch training at the sweep's fidelity (8000 x 2); the
                     sweep it stands in for: 25 such trials = 400,000 training image-passes
    (c) params, MACs the analytic size alone (bigger predicted better): the floor any method must beat

    python benchmarks/oneshot_ranking.py --data-root ../shared/data/cifar10
    python benchmarks/oneshot_ranking.py --data-root ../shared/data/cifar10 --quick   # smoke run, minutes

What the numbers mean. Kendall's tau and Spearman's rho are the rank agreement with the reference
(1: the same order, 0: unrelated). With ~12 architectures tau rests on 66 pairs and one swapped pair
moves it by 0.03, and the architectures themselves are a sample: the bootstrap 95 % interval of tau
over architectures (1000 resamples, printed for (a) and (b)) is wide, and two predictors whose
intervals overlap broadly are not shown to rank differently.
"confirmed HV" is what a search trusting the predictor would have found: its predicted Pareto front
(predicted accuracy up, MACs down) among these architectures, scored by their stand-alone accuracies
(normalized hypervolume; one reference point for all: 0 %, 1.1 x the largest MACs). The oracle row
is the front by the stand-alone accuracies themselves, the best any predictor can reach. A larger
predicted front can only gain, so the front size is printed too; MACs alone puts every
architecture on its front and reaches the oracle trivially.
Compute and wall times are printed side by side: the supernet's training image-passes (plus the
forward passes of its inherited evaluations: a real search evaluates search.num_samples members,
this benchmark only the picked ones) against the sweep's; measured wall of (a) supernet training
plus evaluation of the picked architectures (2 threads) against (b) the sweep, estimated as
sweep-trials x mean low-fidelity trial time / workers (1 thread per trial).

All trainings use the same seeds (1..--seeds; the supernet seed 1) and the validation split, never
the test split. Each from-scratch training runs in its own process through the sweep's ``train``.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import dataclasses
import json
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the sibling benchmark's helpers

from fidelity_ranking import _train_one, parse_fidelity  # noqa: E402

from mfsearch.analysis.stats import kendall_tau, mean_interval, spearman_rho  # noqa: E402
from mfsearch.pareto import normalized_hypervolume, pareto_indices  # noqa: E402
from mfsearch.search import SweepOptions, prepare_sweep  # noqa: E402
from mfsearch.search.candidates import sample_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAXIMIZE = (True, False)    # (val/acc1, MACs)
QUICK = {"images": 2000, "supernet_epochs": 2, "reference": "2000x2", "fidelity": "2000x1", "archs": 10,
         "sweep_trials": 10}   # 10 x 2000 x 1 = the quick supernet's 2 x 2000 x 5 image-passes


def dominant_mixer(cfg) -> str:
    """The most frequent mixer over the blocks (a tie goes to the one nearer the head)."""
    blocks = [str(m) for s in cfg.stages for m in s.block_mixers()]
    return collections.Counter(reversed(blocks)).most_common(1)[0][0]


def pick_architectures(space, supernet, n: int, seed: int) -> dict[str, tuple]:
    """name -> (cfg, cost): the families, then members covering every mixer as dominant, then
    members at evenly spaced MACs ranks of a pool of 400 distinct feasible ones."""
    from mfsearch.cost import count_config
    from mfsearch.oneshot.space import arch_key

    families, _ = space.family_members(supernet)
    picks = {f: (cfg, count_config(cfg)) for f, cfg in list(families.items())[:n]}
    taken = {arch_key(cfg) for cfg, _ in picks.values()}
    rng, pool = random.Random(seed), {}
    for _ in range(20000):
        member = space.member(sample_params(space.spec.space, rng))
        if not isinstance(member, str) and arch_key(member[0]) not in taken:
            pool.setdefault(arch_key(member[0]), member)
        if len(pool) >= 400:
            break
    pool = sorted(pool.values(), key=lambda m: m[1].macs)
    mixers = [str(m) for m in dict.fromkeys(m for c in supernet.choices for m in c.mixers)]
    covered = {dominant_mixer(cfg) for cfg, _ in picks.values()}
    for mixer in mixers:
        with_it = [m for m in pool if dominant_mixer(m[0]) == mixer]
        if mixer not in covered and with_it and len(picks) < n:
            cfg, cost = with_it[len(with_it) // 2]          # its median-MACs member
            picks[f"searched-{mixer}"] = (cfg, cost)
            taken.add(arch_key(cfg))
    rest = [m for m in pool if arch_key(m[0]) not in taken]
    k = min(n - len(picks), len(rest))
    for i in range(k):
        cfg, cost = rest[round(i * (len(rest) - 1) / max(1, k - 1))]
        picks[f"searched{i}-{dominant_mixer(cfg)}"] = (cfg, cost)
    return picks


def train_oneshot(spec, supernet, sampler, probes, cfgs: dict, threads: int) -> dict:
    """Train the supernet once, then each picked member's inherited val/acc1 and val/loss."""
    from mfsearch.oneshot.evaluate import InheritedEvaluator
    from mfsearch.oneshot.training import train_supernet

    for cfg in cfgs.values():
        supernet.check_member(cfg)
    started = time.perf_counter()

    def show(metrics, epoch, model):
        print(f"[supernet] epoch {epoch}/{spec.recipe.epochs}: train/loss {metrics.get('train/loss', float('nan')):.3f}"
              f", probes' mean val/acc1 {metrics.get('val/acc1', float('nan')):.2f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    trained = train_supernet(supernet, sampler, probes, spec.data, spec.recipe, sinks=[show], threads=threads)
    train_s = time.perf_counter() - started
    eval_started = time.perf_counter()      # decoding the validation split once included
    evaluate = InheritedEvaluator.from_datamodule(supernet, trained.datamodule)
    scores = {name: evaluate(cfg) for name, cfg in cfgs.items()}
    eval_s = time.perf_counter() - eval_started
    for name, s in scores.items():
        print(f"[supernet] inherited {name:>22}: val/acc1 {s['val/acc1']:6.2f}", flush=True)
    images = trained.datamodule.train_size
    val_images = sum(int(y.shape[0]) for _, y in evaluate.batches)
    return {"train_s": train_s, "eval_s": eval_s, "wall_s": train_s + eval_s, "train_images": images,
            "val_images": val_images,
            "epochs": spec.recipe.epochs, "paths_per_step": sampler.paths_per_step, "sampling": sampler.rule,
            "image_passes": spec.recipe.epochs * images * sampler.paths_per_step,
            "unfair_paths": sampler.unfair_paths, "mixer_usage": sampler.usage_shares(),
            "history": trained.history, "inherited": scores}


def bootstrap_tau(pred: list[float], ref: list[float], resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of Kendall's tau over architectures resampled with replacement."""
    rng, taus = random.Random(seed), []
    for _ in range(resamples):
        idx = [rng.randrange(len(pred)) for _ in pred]
        t = kendall_tau([pred[i] for i in idx], [ref[i] for i in idx])
        if t == t:                       # nan when a resample holds one architecture only
            taus.append(t)
    taus.sort()
    if not taus:
        return float("nan"), float("nan")
    return taus[int(0.025 * (len(taus) - 1))], taus[int(0.975 * (len(taus) - 1))]


def confirmed_hv(pred: dict, ref: dict, macs: dict, reference, ideal) -> tuple[float, list[str]]:
    """The predictor's front among the picked archs, scored by their stand-alone accuracies."""
    names = list(pred)
    front = [names[i] for i in pareto_indices([(pred[n], macs[n]) for n in names], MAXIMIZE)]
    return normalized_hypervolume([(ref[n], macs[n]) for n in front], MAXIMIZE, reference, ideal), front


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "mixer_per_stage_oneshot.yaml"),
                   help="a one-shot search space YAML (its data, recipe, supernet epochs and sampling are used)")
    p.add_argument("--data-root", required=True, help="the dataset folder (e.g. ../shared/data/cifar10)")
    p.add_argument("--archs", type=int, default=12, help="architectures ranked (>= 10 advised; default 12)")
    p.add_argument("--reference", default="8000x8", help="stand-alone reference: images x epochs (default 8000x8)")
    p.add_argument("--fidelity", default="8000x2", help="the from-scratch sweep's fidelity (default 8000x2)")
    p.add_argument("--sweep-trials", type=int, help="trials of the sweep of equal compute (default 25; --quick 10)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 1..n for every from-scratch training (default 1)")
    p.add_argument("--supernet-epochs", type=int, help="override the YAML's train.epochs for the supernet")
    p.add_argument("--supernet-images", type=int, help="override the YAML's data.train_subset for the supernet")
    p.add_argument("--supernet-threads", type=int, default=2, help="threads of the supernet training (default 2)")
    p.add_argument("--workers", type=int, default=2, help="from-scratch trainings at once, 1 thread each (default 2)")
    p.add_argument("--candidate-seed", type=int, default=0, help="seed of the architecture pool (default 0)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the tau interval (default 1000)")
    p.add_argument("--workdir", default=str(ROOT / "benchmarks" / ".oneshot_ranking"), help="output folder")
    p.add_argument("--out", help="JSON file (default WORKDIR/oneshot_ranking.json)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2000 images, supernet 2 epochs, reference 2000x2, fidelity 2000x1, 10 archs, "
                        "10 sweep trials (a few minutes on 2 cores)")
    args = p.parse_args()
    if args.quick:
        args.reference, args.fidelity, args.archs = QUICK["reference"], QUICK["fidelity"], QUICK["archs"]
        args.supernet_epochs = args.supernet_epochs or QUICK["supernet_epochs"]
        args.supernet_images = args.supernet_images or QUICK["images"]
        args.sweep_trials = args.sweep_trials or QUICK["sweep_trials"]
    args.sweep_trials = args.sweep_trials or 25
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else workdir / "oneshot_ranking.json"
    wall_started = time.perf_counter()

    overrides = {"data.root": args.data_root}
    if args.supernet_epochs:
        overrides["train.epochs"] = args.supernet_epochs
    if args.supernet_images:
        overrides["data.train_subset"] = args.supernet_images
    spec, num_classes, img_size, _ = prepare_sweep(args.space, SweepOptions(overrides=overrides))
    spec = dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, seed=1))   # the shared seed 1
    spec_raw = {**spec.raw, "data": {**spec.raw.get("data", {}), "root": args.data_root}}

    import torch

    from mfsearch.oneshot.runner import OneShotPlan, build
    from mfsearch.oneshot.space import arch_key
    torch.set_num_threads(args.supernet_threads)
    space, supernet, sampler, probes = build(OneShotPlan(spec, num_classes, img_size, args.supernet_threads))
    picks = pick_architectures(space, supernet, args.archs, args.candidate_seed)
    names = list(picks)
    macs = {n: picks[n][1].macs for n in names}
    nparams = {n: picks[n][1].params for n in names}
    print(f"{len(names)} architectures (dominant mixer, MACs):", flush=True)
    for n in names:
        print(f"  {n:>22}  {dominant_mixer(picks[n][0]):>9}  {macs[n] / 1e6:6.2f} M  {arch_key(picks[n][0])}")

    # (a) one-shot: the supernet alone on the machine, so its wall time is its own.
    print(f"\n(a) supernet: {spec.recipe.epochs} epochs on {spec.data.train_subset} images, "
          f"{args.supernet_threads} threads", flush=True)
    oneshot = train_oneshot(spec, supernet, sampler, probes, {n: picks[n][0] for n in names}, args.supernet_threads)

    # Stand-alone reference and (b) low fidelity, every architecture from scratch.
    reference, fidelity = parse_fidelity(args.reference), parse_fidelity(args.fidelity)
    jobs = [{"name": n, "arch": picks[n][0].to_dict(), "images": images, "epochs": epochs, "seed": seed,
             "spec_raw": spec_raw}
            for images, epochs in (fidelity, reference) for seed in range(1, args.seeds + 1) for n in names]
    print(f"\nfrom scratch: {len(names)} architectures x {args.seeds} seed(s) x (fidelity {args.fidelity} + "
          f"reference {args.reference}) = {len(jobs)} trainings, {args.workers} at a time", flush=True)
    started, results = time.perf_counter(), []
    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        for i, done in enumerate(cf.as_completed([pool.submit(_train_one, j) for j in jobs]), 1):
            r = done.result()
            results.append(r)
            print(f"[{(time.perf_counter() - started) / 60:5.1f} min] {i}/{len(jobs)} {r['name']:>22} "
                  f"{r['images']}x{r['epochs']} seed {r['seed']}: val/acc1 {r['val_acc1']:.2f} in {r['wall_s']:.0f} s",
                  flush=True)
    scratch_s = time.perf_counter() - started

    def mean_acc(images: int, epochs: int) -> dict[str, float]:
        return {n: mean_interval([r["val_acc1"] for r in results
                                  if (r["name"], r["images"], r["epochs"]) == (n, images, epochs)]).mean
                for n in names}

    def trial_walls(images: int, epochs: int) -> list[float]:
        return [r["wall_s"] for r in results if (r["images"], r["epochs"]) == (images, epochs)]

    ref = mean_acc(*reference)
    low_trial_s = sum(trial_walls(*fidelity)) / len(trial_walls(*fidelity))
    sweep_s = args.sweep_trials * low_trial_s / args.workers
    sweep_passes = args.sweep_trials * fidelity[0] * fidelity[1]
    predictors = {
        "(a) one-shot": ({n: oneshot["inherited"][n]["val/acc1"] for n in names}, oneshot["wall_s"]),
        f"(b) from scratch {args.fidelity}": (mean_acc(*fidelity), sweep_s),
        "(c) params": (dict(nparams), 0.0),
        "(c) MACs": (dict(macs), 0.0),
    }
    hv_ref, hv_ideal = (0.0, 1.1 * max(macs.values())), (100.0, 0.0)
    rows = []
    for label, (pred, wall) in predictors.items():
        x, y = [pred[n] for n in names], [ref[n] for n in names]
        hv, front = confirmed_hv(pred, ref, macs, hv_ref, hv_ideal)
        ci = bootstrap_tau(x, y, args.bootstrap, 0) if label[:3] in ("(a)", "(b)") else None
        rows.append({"predictor": label, "kendall_tau": kendall_tau(x, y), "spearman_rho": spearman_rho(x, y),
                     "tau_95": ci, "wall_s": wall, "confirmed_hv": hv, "front": front, "scores": pred})
    oracle_hv, oracle_front = confirmed_hv(ref, ref, macs, hv_ref, hv_ideal)

    print(f"\nstand-alone reference {args.reference} (mean of {args.seeds} seed(s)), val/acc1:")
    for n in sorted(names, key=lambda n: -ref[n]):
        print(f"  {n:>22}  {ref[n]:6.2f}   one-shot {oneshot['inherited'][n]['val/acc1']:6.2f}   "
              f"{args.fidelity} {predictors[f'(b) from scratch {args.fidelity}'][0][n]:6.2f}   MACs {macs[n] / 1e6:6.2f} M")
    print(f"\n{'predictor':<28} {'tau':>6} {'tau 95% (bootstrap)':>20} {'rho':>6} {'wall s':>8} "
          f"{'confirmed HV':>12} {'front':>6}")
    for r in rows:
        ci = f"[{r['tau_95'][0]:+.2f}, {r['tau_95'][1]:+.2f}]" if r["tau_95"] else ""
        print(f"{r['predictor']:<28} {r['kendall_tau']:>+6.2f} {ci:>20} {r['spearman_rho']:>+6.2f} "
              f"{r['wall_s']:>8.0f} {r['confirmed_hv']:>12.4f} {len(r['front']):>3}/{len(names)}")
    print(f"{'oracle (stand-alone front)':<28} {'':>6} {'':>20} {'':>6} {'':>8} {oracle_hv:>12.4f} "
          f"{len(oracle_front):>3}/{len(names)}")
    print(f"\nequal compute: supernet {oneshot['epochs']} epochs x {oneshot['train_images']} images x "
          f"{oneshot['paths_per_step']} paths = {oneshot['image_passes']:,} image-passes; sweep {args.sweep_trials} "
          f"trials x {fidelity[0]} images x {fidelity[1]} epochs = {sweep_passes:,} "
          f"(ratio {oneshot['image_passes'] / sweep_passes:.2f}); inherited evaluation: {len(names)} archs x "
          f"{oneshot['val_images']} val images = {len(names) * oneshot['val_images']:,} forward passes "
          f"(a search of {spec.search.num_samples}: {spec.search.num_samples * oneshot['val_images']:,}).")
    print(f"measured wall: supernet training {oneshot['train_s']:.0f} s + inherited evaluation of {len(names)} archs "
          f"{oneshot['eval_s']:.1f} s = {oneshot['wall_s']:.0f} s ({args.supernet_threads} threads), vs sweep "
          f"{args.sweep_trials} x {low_trial_s:.1f} s per trial / {args.workers} workers = {sweep_s:.0f} s.")
    print(f"HV: normalized, reference point (0 %, {hv_ref[1] / 1e6:.2f} M MACs), ideal (100 %, 0); "
          f"tau over {len(names) * (len(names) - 1) // 2} pairs; supernet paths with redrawn mixers: "
          f"{oneshot['unfair_paths']}. Total wall {(time.perf_counter() - wall_started) / 60:.1f} min.")

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "space": args.space, "reference": args.reference, "fidelity": args.fidelity, "seeds": args.seeds,
        "sweep_trials": args.sweep_trials, "workers": args.workers, "quick": args.quick,
        "architectures": {n: {"arch": picks[n][0].to_dict(), "key": arch_key(picks[n][0]), "macs": macs[n],
                              "params": nparams[n], "dominant_mixer": dominant_mixer(picks[n][0])} for n in names},
        "stand_alone": ref, "oneshot": oneshot, "results": results, "table": rows,
        "oracle": {"confirmed_hv": oracle_hv, "front": oracle_front},
        "compute": {"supernet_image_passes": oneshot["image_passes"], "sweep_image_passes": sweep_passes,
                    "supernet_wall_s": oneshot["wall_s"], "sweep_wall_s_estimate": sweep_s,
                    "low_fidelity_trial_s": low_trial_s, "from_scratch_wall_s": scratch_s},
        "hv_reference": hv_ref, "hv_ideal": hv_ideal}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
