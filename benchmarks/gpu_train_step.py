"""Train-step throughput, peak memory and MFU of mfsearch's caformer_s18 against timm's, on a GPU.

One run measures both models (the reference, timm, in the same run: the ratio is what counts) in
several precision / memory-format / compile modes:

    fp32              plain float32 (PyTorch's default TF32 settings, printed)
    bf16              torch.autocast(bfloat16) around forward + loss
    bf16_cl           bf16 + channels_last model and input
    bf16_cl_compile   bf16 + channels_last + torch.compile(model)

A train step is zero_grad + forward + cross-entropy + backward + AdamW step. Per (mode, model):
a fresh model (timm's seeded weights loaded into both), ``--warmup`` untimed steps (compilation,
cuDNN autotuning, allocator), then ``--windows`` timed windows of ``--steps`` steps each, timed
with the device synchronized at both ends; images/s is the median over the windows. Peak memory
is ``torch.cuda.max_memory_allocated`` with the stats reset before the model is moved to the
device (weights + grads + AdamW state + activations). MFU = 3 (fwd+bwd) x 2 x MACs/image x
images/s / peak, MACs/image from ``mfsearch.count_cost`` (analytic, fvcore/timm convention),
checked in the same run against ``torch.utils.flop_counter.FlopCounterMode`` on a real step.
The MFU of every mode, fp32 included, is against the bf16 dense peak (``--peak-tflops``).

    python benchmarks/gpu_train_step.py                                  # H200 defaults
    python benchmarks/gpu_train_step.py --modes bf16,bf16_cl --json out.json
    python benchmarks/gpu_train_step.py --device cpu --batch 2 --img-size 64 --steps 2 --modes fp32  # self-test

A mode that fails for one model (torch.compile error, out of memory) prints
"compile failed: <one line>" / "failed: <one line>" in its row and the rest still runs. The JSON
file is rewritten after every measurement, so a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's mfsearch, installed or not

import timm

import mfsearch

MODES = {
    # name: (label, autocast dtype, channels_last, compile)
    "fp32": ("fp32", None, False, False),
    "bf16": ("bf16-mixed", torch.bfloat16, False, False),
    "bf16_cl": ("bf16-mixed + channels_last", torch.bfloat16, True, False),
    "bf16_cl_compile": ("bf16-mixed + channels_last + compile", torch.bfloat16, True, True),
}
IMPLS = ("timm", "mfsearch")
H200_BF16_DENSE_TFLOPS = 989.0


def one_line(error: BaseException, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    first = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    text = f"{type(error).__name__}: {first}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def build(impl: str, name: str, img_size: int, state: dict) -> torch.nn.Module:
    if impl == "timm":
        model = timm.create_model(name, num_classes=1000)
    else:
        model = mfsearch.create_model(name, num_classes=1000, img_size=img_size)
    model.load_state_dict(state, strict=True)
    return model.train()


def flop_check(name: str, img_size: int, state: dict, device: torch.device, macs: int) -> dict:
    """FLOPs of one real fp32 train step (batch 1) by PyTorch's operator counter, per model.

    The forward count checks count_cost's MACs. For the backward, only the matrix products are
    compared with their forward (2x expected, hence 3x fwd+bwd): the counter's formula for the
    backward of grouped (depthwise) convolutions overcounts, so its conv total says nothing."""
    from torch.utils.flop_counter import FlopCounterMode

    def by_op(counter) -> dict:
        return {str(k).removeprefix("aten."): v for k, v in counter.get_flop_counts().get("Global", {}).items()}

    out = {}
    for impl in IMPLS:
        model = build(impl, name, img_size, state).to(device)
        x = torch.randn(1, 3, img_size, img_size, device=device)
        with FlopCounterMode(display=False) as fwd_counter:
            loss = model(x).float().sum()
        with FlopCounterMode(display=False) as bwd_counter:
            loss.backward()
        fwd, bwd = by_op(fwd_counter), by_op(bwd_counter)
        mm_fwd = sum(v for k, v in fwd.items() if "conv" not in k)
        mm_bwd = sum(v for k, v in bwd.items() if "conv" not in k)
        total = sum(fwd.values())
        out[impl] = {"fwd_flops_by_op": fwd, "bwd_flops_by_op": bwd, "fwd_macs": total / 2,
                     "fwd_macs_vs_count_cost": total / 2 / macs,
                     "matmul_bwd_over_fwd": mm_bwd / mm_fwd if mm_fwd else None}
        del model, x, loss
        free(device)
    return out


def make_step(model, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, device: torch.device,
              amp_dtype: torch.dtype | None):
    """One train step: zero_grad, forward and loss (under autocast when amp_dtype), backward, AdamW."""
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def measure(impl: str, mode: str, args, state: dict, device: torch.device) -> dict:
    label, amp_dtype, channels_last, compile_ = MODES[mode]
    row: dict = {"mode": mode, "label": label, "impl": impl}
    free(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = opt = x = y = step = None
    try:
        model = build(impl, args.model, args.img_size, state).to(device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        g = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn(args.batch, 3, args.img_size, args.img_size, generator=g).to(device)
        x = x.contiguous(memory_format=fmt)
        y = torch.randint(0, 1000, (args.batch,), generator=g).to(device)
        step = make_step(torch.compile(model) if compile_ else model, opt, x, y, device, amp_dtype)
        t0 = time.perf_counter()
        try:
            step()                        # the first step: compilation happens here
            sync(device)
        except Exception as e:  # noqa: BLE001 - any compile/backend error becomes the row's note
            row["error"] = ("compile failed: " if compile_ else "failed: ") + one_line(e)
            return row
        row["first_step_s"] = time.perf_counter() - t0
        for _ in range(max(0, args.warmup - 1)):
            step()
        sync(device)
        row["warmup_s"] = time.perf_counter() - t0
        rates = []
        for _ in range(args.windows):
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync(device)
            rates.append(args.batch * args.steps / (time.perf_counter() - start))
        row["img_s"] = statistics.median(rates)
        row["img_s_windows"] = rates
        row["ms_per_step"] = 1000 * args.batch / row["img_s"]
        if device.type == "cuda":
            row["peak_mem_alloc_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            row["peak_mem_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
    except Exception as e:  # noqa: BLE001 - out of memory, a bad mode on this device: note it, go on
        row["error"] = "failed: " + one_line(e)
    finally:
        model = opt = x = y = step = None
        if compile_:
            torch._dynamo.reset()
        free(device)
    return row


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
           "device": str(device), "cudnn_benchmark": torch.backends.cudnn.benchmark}
    for key, get in (("matmul_allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                     ("cudnn_allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
                     ("float32_matmul_precision", torch.get_float32_matmul_precision)):
        try:
            env[key] = get()
        except Exception as e:  # noqa: BLE001 - newer torch may refuse the legacy flags
            env[key] = f"unavailable ({one_line(e, 80)})"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                   gpu_mem_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    else:
        env.update(cpu_threads=torch.get_num_threads())
    return env


def write_json(path: str | None, report: dict) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, p)


def fmt(value, spec: str, width: int) -> str:
    return f"{value:{width}{spec}}" if isinstance(value, (int, float)) else f"{'-':>{width}s}"


def gib(row: dict) -> float | None:
    return row["peak_mem_alloc_mib"] / 1024 if "peak_mem_alloc_mib" in row else None


def mfu(row: dict) -> float | None:
    return 100 * row["mfu"] if "mfu" in row else None


def print_table(report: dict) -> None:
    rows = {(r["mode"], r["impl"]): r for r in report["rows"]}
    head = (f"{'mode':38s} {'timm img/s':>10s} {'mfs img/s':>10s} {'ratio':>6s} "
            f"{'timm GiB':>8s} {'mfs GiB':>8s} {'timm MFU':>8s} {'mfs MFU':>8s}")
    print("\n" + head + "\n" + "-" * len(head))
    for mode in report["args"]["modes"]:
        t, m = rows.get((mode, "timm"), {}), rows.get((mode, "mfsearch"), {})
        ratio = report["ratios"].get(mode)
        print(f"{MODES[mode][0]:38s} {fmt(t.get('img_s'), '.1f', 10)} {fmt(m.get('img_s'), '.1f', 10)} "
              f"{fmt(ratio, '.3f', 6)} {fmt(gib(t), '.2f', 8)} {fmt(gib(m), '.2f', 8)} "
              f"{fmt(mfu(t), '.1f', 7)}{'%' if mfu(t) is not None else ' '}"
              f"{fmt(mfu(m), '.1f', 7)}{'%' if mfu(m) is not None else ' '}")
        for impl, r in (("timm", t), ("mfsearch", m)):
            if "error" in r or "skipped" in r:
                print(f"    {impl}: {r.get('error') or r.get('skipped')}")
    print(f"ratio = mfsearch img/s / timm img/s (same run); GiB = max_memory_allocated; MFU = 6 x MACs x img/s "
          f"/ {report['peak_tflops']:g} TFLOP/s (bf16 dense peak, for every mode, fp32 included)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available)")
    parser.add_argument("--model", default="caformer_s18", help="a preset both timm and mfsearch have")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed window")
    parser.add_argument("--windows", type=int, default=5, help="timed windows; images/s is their median")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (the first one compiles)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS,
                        help="the GPU's dense bf16 peak for MFU (default: H200/H100 SXM, 989)")
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds; once spent, remaining measurements are skipped (a compile one needs "
                             "90 s left, others 15 s); 0: no budget")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off")
    parser.add_argument("--json", default=None, help="write the results here (rewritten after each measurement)")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_train_step: --device cuda but torch sees no CUDA device "
              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})", file=sys.stderr)
        return 2
    if device.type == "cuda" and not args.no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = True

    start = time.perf_counter()
    cost = mfsearch.count_cost(args.model, img_size=args.img_size)
    report = {"args": vars(args), "env": environment(device), "peak_tflops": args.peak_tflops,
              "macs_per_image": cost.macs, "params": cost.params, "rows": [], "ratios": {}}
    env = report["env"]
    print(f"gpu_train_step: {args.model}, batch {args.batch}, {args.img_size} px, warm-up {args.warmup} steps, "
          f"{args.windows} windows x {args.steps} steps (median), modes {','.join(args.modes)}")
    print(f"device {env.get('gpu', device)} | torch {env['torch']} | timm {env['timm']} | cudnn.benchmark "
          f"{env['cudnn_benchmark']} | TF32 matmul {env['matmul_allow_tf32']}, cudnn {env['cudnn_allow_tf32']}")
    print(f"peak used for MFU: {args.peak_tflops:g} TFLOP/s dense bf16"
          + (" (default: H200/H100 SXM datasheet)" if args.peak_tflops == H200_BF16_DENSE_TFLOPS else " (--peak-tflops)"))

    torch.manual_seed(0)
    state = timm.create_model(args.model, num_classes=1000).state_dict()

    t = time.perf_counter()
    print(f"\nMACs/image: mfsearch.count_cost = {cost.macs / 1e9:.4f} G (params {cost.params / 1e6:.2f} M)", end="")
    if args.model == "caformer_s18" and args.img_size == 224:
        print(" | timm/fvcore convention (README): ~4.1 G", end="")
    print()
    try:
        report["flop_check"] = check = flop_check(args.model, args.img_size, state, device, cost.macs)
        for impl, c in check.items():
            bwd = c["matmul_bwd_over_fwd"]
            print(f"  FlopCounterMode, {impl:8s}: fwd {c['fwd_macs'] / 1e9:.4f} GMACs "
                  f"({c['fwd_macs_vs_count_cost']:.4f} x count_cost; ops {', '.join(sorted(c['fwd_flops_by_op']))}), "
                  + (f"matmul bwd/fwd {bwd:.2f}" if bwd else "matmul bwd/fwd -"))
        if device.type == "cpu":
            print("  (on CPU the counter may not see scaled_dot_product_attention: attention MACs missing)")
    except Exception as e:  # noqa: BLE001 - the cross-check is informative only
        report["flop_check"] = {"error": one_line(e)}
        print(f"  FlopCounterMode check failed: {one_line(e)}")
    report["flop_check_s"] = time.perf_counter() - t
    print(f"  ({report['flop_check_s']:.1f} s)")
    write_json(args.json, report)

    for mode in args.modes:
        t_mode = time.perf_counter()
        for impl in IMPLS:
            left = args.time_budget - (time.perf_counter() - start)
            need = 90 if MODES[mode][3] else 15
            if args.time_budget and left < need:
                row = {"mode": mode, "label": MODES[mode][0], "impl": impl,
                       "skipped": f"skipped: time budget ({left:.0f} s left of {args.time_budget:.0f} s)"}
            else:
                row = measure(impl, mode, args, state, device)
            if "img_s" in row:
                row["tflops"] = 6 * cost.macs * row["img_s"] / 1e12
                row["mfu"] = row["tflops"] / args.peak_tflops
            report["rows"].append(row)
            what = (row.get("error") or row.get("skipped") or
                    f"{row['img_s']:.1f} img/s (windows {min(row['img_s_windows']):.1f}-{max(row['img_s_windows']):.1f}), "
                    f"{row['tflops']:.1f} TFLOP/s, MFU {100 * row['mfu']:.1f}%"
                    + (f", peak {row['peak_mem_alloc_mib'] / 1024:.2f} GiB" if "peak_mem_alloc_mib" in row else "")
                    + f", first step {row['first_step_s']:.1f} s")
            print(f"  {MODES[mode][0]:38s} {impl:8s} {what}", flush=True)
            write_json(args.json, report)
        rows = {r["impl"]: r for r in report["rows"] if r["mode"] == mode}
        if all("img_s" in rows.get(i, {}) for i in IMPLS):
            report["ratios"][mode] = rows["mfsearch"]["img_s"] / rows["timm"]["img_s"]
        report.setdefault("mode_s", {})[mode] = time.perf_counter() - t_mode
        print(f"  ({MODES[mode][0]}: {report['mode_s'][mode]:.1f} s)", flush=True)
    report["total_s"] = time.perf_counter() - start
    write_json(args.json, report)
    print_table(report)
    print(f"gpu_train_step: {report['total_s']:.1f} s" + (f"; results in {args.json}" if args.json else ""))
    measured = sum("img_s" in r for r in report["rows"])
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
