"""Train-step and inference images/s of mfsearch's models against timm's same models, in one run.

Both models get the same weights (timm's state dict loaded into mfsearch's) and the same input.
Timings alternate between the two (A B A B ...) so machine noise hits both alike; the reported
ratio is the median over rounds of per-round ratios (mfsearch images/s / timm images/s).

    python benchmarks/model_throughput.py                      # defaults: 224 px, batch 8
    python benchmarks/model_throughput.py --models caformer_s18 --rounds 9 --json out.json

Target (issue 2): ratio >= 1.0 for caformer_s18, convformer_s18 and poolformerv2_s12 on CPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch

import mfsearch

DEFAULT_MODELS = ["caformer_s18", "convformer_s18", "poolformerv2_s12"]


def time_inference(model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def time_train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return time.perf_counter() - start


def bench(name: str, batch: int, img_size: int, rounds: int, channels_last: bool) -> dict:
    torch.manual_seed(0)
    reference = timm.create_model(name, num_classes=1000)
    ours = mfsearch.create_model(name, num_classes=1000)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(batch, 3, img_size, img_size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        reference = reference.to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))
    out = {"model": name, "batch": batch, "img_size": img_size}
    for mode in ("inference", "train"):
        models = {"timm": reference, "mfsearch": ours}
        opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
        run = {
            "inference": lambda k: time_inference(models[k].eval(), x),
            "train": lambda k: time_train_step(models[k].train(), opts[k], x, y),
        }[mode]
        for k in models:  # warm-up: allocator, oneDNN primitive caches
            run(k)
            run(k)
        times = {"timm": [], "mfsearch": []}
        for r in range(rounds):
            order = ("timm", "mfsearch") if r % 2 == 0 else ("mfsearch", "timm")
            for k in order:
                times[k].append(run(k))
        ratios = [t / m for t, m in zip(times["timm"], times["mfsearch"])]
        out[mode] = {
            "timm_img_s": batch / statistics.median(times["timm"]),
            "mfsearch_img_s": batch / statistics.median(times["mfsearch"]),
            "ratio": statistics.median(ratios),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last input/timm model")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, {args.img_size} px, {args.rounds} alternating rounds")
    header = f"{'model':18s} {'mode':9s} {'timm img/s':>10s} {'mfsearch img/s':>14s} {'ratio':>6s}"
    print(header + "\n" + "-" * len(header))
    results = []
    for name in args.models:
        res = bench(name, args.batch, args.img_size, args.rounds, args.channels_last)
        results.append(res)
        for mode in ("train", "inference"):
            r = res[mode]
            print(f"{name:18s} {mode:9s} {r['timm_img_s']:10.1f} {r['mfsearch_img_s']:14.1f} {r['ratio']:6.2f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
