"""Do two processes measuring the same architectures under mfsearch.latency's protocol agree?

Per architecture (sweep-sized MetaFormers at 32 px), in one run:

1. the protocol (``LatencyProtocol()``: 1 thread, batch 1, warm-up, 5 x 20 timed forwards, median
   and IQR) in two fresh processes, A then B, on the machine as it is; they *agree* when the medians
   differ by no more than the larger of the two IQRs. A shift all architectures share (the median
   of B/A) is the machine's speed drifting between the two processes; each B/A divided by it is
   what is left to the protocol;
2. the old in-trial measurement (torch's default threads, 3 warm-up forwards, median of 20) in a
   fresh process, on the machine as it is and while a competing CPU load (``--load-procs`` processes
   running a matmul loop on ``--load-threads`` threads each, like another trial's training) runs,
   as a ratio against its own quiet value and against the protocol's quiet reference (A);
3. the protocol again under the same load, as a ratio against A.

    python benchmarks/latency_agreement.py
    python benchmarks/latency_agreement.py --archs identityformer convformer --load-procs 2 --json out.json

Every phase prints how much CPU all other processes used while it ran (the load processes
included) and, in a virtual machine, how much the hypervisor stole: "quiet" is only as quiet as the
machine was; nothing here stops other users' processes, or a VM's neighbours.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARCHS = {   # the mixer_per_stage space's largest depths/dims, each a paper family at 32 px
    "identityformer": ("identityformer", [2, 2, 3, 2], [32, 64, 128, 192]),
    "convformer": ("convformer", [2, 2, 3, 2], [32, 64, 128, 192]),
    "caformer": ("caformer", [2, 2, 3, 2], [32, 64, 128, 192]),
}
STEM = {"kernel_size": 3, "stride": 2, "padding": 1}


def arch_cfg(name: str):
    import mfsearch
    from mfsearch.presets import family_arch
    family, depths, dims = ARCHS[name]
    return mfsearch.parse_arch(family_arch(family, depths, dims, img_size=32, num_classes=10, stem=STEM))


def old_in_trial(model, img_size: int, in_chans: int = 3, repeats: int = 20) -> list[float]:
    """The per-forward times (ms) of what trial.py measured before mfsearch.latency, at torch's default threads."""
    import torch
    model = model.eval()
    x = torch.randn(1, in_chans, img_size, img_size)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(1000.0 * (time.perf_counter() - start))
    return times


def worker(style: str, names: list[str]) -> None:
    """In a fresh process: measure ``names`` in ``style`` and print one JSON line."""
    import torch

    from mfsearch.latency import LatencyProtocol, measure_arch
    from mfsearch.model import MetaFormer
    out = {}
    for name in names:
        cfg = arch_cfg(name)
        if style == "protocol":
            m = measure_arch(cfg, LatencyProtocol())
            out[name] = {"median": m.median_ms, "spread": m.spread_ms, "threads": m.protocol.threads, "host": m.host}
        else:
            torch.manual_seed(0)
            samples = old_in_trial(MetaFormer(cfg), cfg.img_size, cfg.in_chans)
            q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
            out[name] = {"median": statistics.median(samples), "spread": q3 - q1, "threads": torch.get_num_threads()}
    print(json.dumps(out))


def load_loop(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    a = torch.randn(384, 384)
    while True:
        a = torch.tanh(a @ a)


def host_cpu_s() -> tuple[float, float]:
    """CPU seconds (all cores, from /proc/stat) the host has been busy, and stolen by the hypervisor
    (a virtual machine's neighbours, invisible to ps); nan where there is no /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:7]) - values[3] - values[4]) / tick, values[7] / tick   # minus idle and iowait


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_worker(style: str, names: list[str]) -> dict:
    """Run ``worker`` in a fresh process; print how much CPU everything else used meanwhile."""
    (busy, steal), ours, start = host_cpu_s(), children_cpu_s(), time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--worker", style, "--archs", *names],
                         capture_output=True, text=True, check=True)
    (busy1, steal1), wall = host_cpu_s(), time.perf_counter() - start
    others = (busy1 - busy) - (children_cpu_s() - ours)
    print(f"  {style:8} fresh process, {wall:4.1f} s; meanwhile other processes used {100 * others / wall:3.0f}% "
          f"of one core, the hypervisor stole {100 * (steal1 - steal) / wall:3.0f}%", flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", choices=sorted(ARCHS), default=list(ARCHS))
    parser.add_argument("--load-procs", type=int, default=1, help="competing load processes (default 1)")
    parser.add_argument("--load-threads", type=int, default=1, help="torch threads of each load process")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", choices=["protocol", "old"], help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_loop(args.load_threads)
    if args.worker:
        return worker(args.worker, args.archs)

    import mfsearch
    print("quiet phase (the machine as it is):", flush=True)
    a = run_worker("protocol", args.archs)
    b = run_worker("protocol", args.archs)
    old_quiet = run_worker("old", args.archs)
    print(f"loaded phase: {args.load_procs} load process(es) x {args.load_threads} thread(s) of matmul:", flush=True)
    loads = [subprocess.Popen([sys.executable, __file__, "--load", "--load-threads", str(args.load_threads)])
             for _ in range(args.load_procs)]
    try:
        time.sleep(2.0)   # let the load start (imports) and the scheduler settle
        old_loaded = run_worker("old", args.archs)
        protocol_loaded = run_worker("protocol", args.archs)
    finally:
        for p in loads:
            p.terminate()
        for p in loads:
            p.wait()

    host = next(iter(a.values()))["host"]
    print(f"\nhost: {host}\n")
    print("1. the protocol (1 thread, batch 1, median and IQR of 5 x 20 forwards) in two fresh processes")
    print(f"{'arch':16} {'MACs M':>7} {'process A ms':>16} {'process B ms':>16} {'B - A ms':>9} {'(%)':>7}  agree")
    for name in args.archs:
        ra, rb = a[name], b[name]
        diff = rb["median"] - ra["median"]
        agree = abs(diff) <= max(ra["spread"], rb["spread"])
        macs = mfsearch.count_cost(arch_cfg(name)).macs / 1e6
        print(f"{name:16} {macs:7.2f} {ra['median']:8.3f} ±{ra['spread']:6.3f} {rb['median']:8.3f} ±{rb['spread']:6.3f} "
              f"{diff:+9.3f} {100 * diff / ra['median']:+6.1f}%  {'yes' if agree else 'NO'}")
    drift = statistics.median(b[n]["median"] / a[n]["median"] for n in args.archs)
    print(f"B/A over all archs (median): {drift:.3f}; B/A of each arch divided by it: "
          + ", ".join(f"{n} {b[n]['median'] / a[n]['median'] / drift:.3f}" for n in args.archs))
    print("(a shift all archs share is the machine's speed drifting between the processes, not the protocol)")
    threads = next(iter(old_quiet.values()))["threads"]
    print(f"\n2. old in-trial style ({threads} threads = torch's default, median of 20) quiet vs under load; "
          f"the protocol under the same load")
    print(f"{'arch':16} {'old quiet ms':>16} {'old loaded ms':>17} {'loaded/quiet':>12} {'loaded/A':>9}"
          f" {'protocol loaded ms':>19} {'loaded/A':>9}")
    for name in args.archs:
        oq, ol, pl, ra = old_quiet[name], old_loaded[name], protocol_loaded[name], a[name]
        print(f"{name:16} {oq['median']:8.3f} ±{oq['spread']:6.3f} {ol['median']:9.3f} ±{ol['spread']:6.3f} "
              f"{ol['median'] / oq['median']:12.2f} {ol['median'] / ra['median']:9.2f}"
              f" {pl['median']:10.3f} ±{pl['spread']:6.3f} {pl['median'] / ra['median']:9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"host": host, "protocol_a": a, "protocol_b": b, "old_quiet": old_quiet,
                                               "old_loaded": old_loaded, "protocol_loaded": protocol_loaded,
                                               "load_procs": args.load_procs, "load_threads": args.load_threads},
                                              indent=2))


if __name__ == "__main__":
    main()
