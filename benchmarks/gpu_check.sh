#!/usr/bin/env bash
# The GPU check of issue 10 (item 5), one script, well under 8 minutes on one H200:
#   1. the smoke sweep with --gpus-per-trial 0.5: wall time, and whether trials ran two per GPU
#      (overlap of the trials' MLflow child runs, the sweep's own "N running" lines, nvidia-smi
#      samples of the processes on the GPU);
#   2-4. benchmarks/gpu_train_step.py: train-step images/s of caformer_s18 (224 px, batch 128),
#      mfsearch against timm in the same run, in fp32 / bf16 / bf16+channels_last /
#      bf16+channels_last+compile, with peak memory and MFU against the bf16 peak.
#
#   bash benchmarks/gpu_check.sh [CIFAR10_ROOT] [--peak-tflops 989] [--budget 420] [--skip-sweep]
#
# CIFAR-10 root: the argument, else $MFSEARCH_DATA_DIR/cifar10, else ../shared/data/cifar10 or
# shared/data/cifar10 beside the checkout; with none there the sweep runs on
# --set data.dataset=synthetic and says so. Results go to $OUT (the device tool's output folder)
# if set, else ./gpu_check_out: gpu_check.log (all of the below), sweep.log, mlflow.db,
# sweep_runs.tar.gz (Tune's folder and MLflow's artifacts), nvidia_smi.csv, gpu_train_step.json,
# gpu_check_summary.json (7 files: the device tool returns at most 8, two folders deep).
# Python: $PYTHON, else the checkout's .venv, else python3; the checkout is put on PYTHONPATH,
# so mfsearch needs no install. The sweep needs ray, mlflow, lightning and torchmetrics: when one
# is missing it is skipped with the list (carry them as wheels), and part 2 still runs.
# No CUDA: says so, runs gpu_train_step.py in a tiny CPU mode as a self-test, exits 0 if it ran.
# GPU_CHECK_CPU_SWEEP=1 also runs part 1 without CUDA (--gpus-per-trial 0): a test of this script.
set -uo pipefail

PEAK_TFLOPS=989
BUDGET=420          # seconds for the whole script; the hard caps below keep it under 8 minutes
SWEEP_TIMEOUT=180    # ~2 min expected on an H200
SKIP_SWEEP=0
DATA_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-tflops) PEAK_TFLOPS="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --sweep-timeout) SWEEP_TIMEOUT="$2"; shift 2 ;;
    --skip-sweep) SKIP_SWEEP=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) DATA_ARG="$1"; shift ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
finish() { exec 1>&- 2>&-; wait "$TEE_PID" 2>/dev/null; exit "$1"; }   # the log complete on exit

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"
else PY=python3; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
banner() { echo; echo "=== $* [t=$(since "$T0") s] ==="; }

banner "gpu_check: $(date -u +%FT%TZ), host $(hostname), python $PY, out $OUT"
"$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()} | torch {torch.__version__} (CUDA {torch.version.cuda}) | "
      f"cuda available: {torch.cuda.is_available()}" +
      (f" | {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}" if torch.cuda.is_available() else ""))
EOF
HAS_CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv || true
fi
echo "bf16 peak for MFU: $PEAK_TFLOPS TFLOP/s dense$([ "$PEAK_TFLOPS" = 989 ] && echo ' (default: H200 SXM datasheet; --peak-tflops to change)')"

if [ "$HAS_CUDA" != 1 ]; then
  echo
  echo "NO CUDA: torch sees no GPU here, so there is nothing to measure; running gpu_train_step.py in a"
  echo "tiny CPU mode as a self-test of the script only (its numbers mean nothing)."
  if [ "${GPU_CHECK_CPU_SWEEP:-0}" != 1 ]; then
    t=$(now)
    "$PY" "$ROOT/benchmarks/gpu_train_step.py" --device cpu --batch 2 --img-size 64 --steps 2 --warmup 1 \
      --windows 2 --modes fp32 --json "$OUT/gpu_train_step_cpu_selftest.json"
    rc=$?
    echo "CPU self-test: exit $rc, $(since "$t") s; no GPU numbers were measured."
    finish $rc
  fi
  echo "GPU_CHECK_CPU_SWEEP=1: running part 1 on CPU (--gpus-per-trial 0) to test this script"
  GPUS_PER_TRIAL=0
else
  GPUS_PER_TRIAL=0.5
fi

# ---------------------------------------------------------------- part 1: the smoke sweep
SWEEP_STATUS="skipped"
SWEEP_WALL=""
if [ "$SKIP_SWEEP" = 1 ]; then
  banner "part 1: smoke sweep skipped (--skip-sweep)"
else
  banner "part 1: smoke sweep, --gpus-per-trial $GPUS_PER_TRIAL (timeout ${SWEEP_TIMEOUT}s)"
  t1=$(now)
  MISSING=$("$PY" - <<'EOF'
import importlib.util
print(" ".join(m for m in ("ray", "mlflow", "lightning", "torchmetrics") if importlib.util.find_spec(m) is None))
EOF
)
  OPTIONAL=$("$PY" -c "import importlib.util as u; print(' '.join(m for m in ('optuna','moocore','plotly','matplotlib') if u.find_spec(m) is None))")
  if [ -n "$MISSING" ]; then
    echo "SWEEP SKIPPED: python modules missing here: $MISSING (carry them as wheels, see the device README); part 2 still runs"
    SWEEP_STATUS="skipped: missing $MISSING"
  else
    [ -n "$OPTIONAL" ] && echo "note: optional modules missing ($OPTIONAL): the sweep's end (front, plots) may fail"
    DATA=""
    for cand in "$DATA_ARG" "${MFSEARCH_DATA_DIR:+$MFSEARCH_DATA_DIR/cifar10}" "$ROOT/../shared/data/cifar10" \
                "$ROOT/shared/data/cifar10"; do
      if [ -n "$cand" ] && { [ -d "$cand/train" ] || [ -d "$cand/cifar-10-batches-py" ]; }; then
        DATA="$(cd "$cand" && pwd)"; break
      fi
    done
    if [ -n "$DATA" ]; then
      DATA_OPTS=(--data-root "$DATA"); echo "data: CIFAR-10 at $DATA"
    else
      DATA_OPTS=(--set data.dataset=synthetic)
      echo "data: NO CIFAR-10 FOUND (arg '${DATA_ARG}', \$MFSEARCH_DATA_DIR '${MFSEARCH_DATA_DIR:-}', ../shared/data, shared/data):"
      echo "      the sweep runs on --set data.dataset=synthetic instead"
    fi
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_sweep.XXXXXX")"
    rm -f "$OUT/mlflow.db" "$OUT/nvidia_smi.csv" "$OUT/sweep.log"
    SMI_PID=""
    if command -v nvidia-smi >/dev/null 2>&1; then
      ( echo "t_s,gpu_util_pct,mem_used_mib,n_compute_apps,apps_pid_mib"
        while :; do
          g=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -d ' ')
          a=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null | tr -d ' ' | grep -v '^$')
          n=$(printf '%s' "$a" | grep -c . || true)
          echo "$(date +%s.%N),$g,$n,$(printf '%s' "$a" | tr ',\n' ':;')"
          sleep 1
        done ) > "$OUT/nvidia_smi.csv" &
      SMI_PID=$!
    fi
    ts=$(now)
    # GNU timeout makes itself a process group leader and signals the whole group when time is up;
    # after a normal end, whatever is left in that group (Ray's processes) is ended below.
    ( cd "$WORK" && exec timeout -k 15 "$SWEEP_TIMEOUT" "$PY" -m mfsearch.cli.main run \
        "$ROOT/search_spaces/smoke.yaml" "${DATA_OPTS[@]}" --gpus-per-trial "$GPUS_PER_TRIAL" \
        --tracking-uri "sqlite:///$OUT/mlflow.db" --storage-path "$WORK/runs" --name gpu-smoke ) \
      > "$OUT/sweep.log" 2>&1 &
    SWEEP_PID=$!
    tail -n +1 --pid=$SWEEP_PID -f "$OUT/sweep.log" 2>/dev/null &
    TAIL_PID=$!
    wait $SWEEP_PID; src=$?
    SWEEP_WALL=$(since "$ts")
    sleep 1; kill $TAIL_PID 2>/dev/null; wait $TAIL_PID 2>/dev/null; echo
    sleep 2
    [ -n "$SMI_PID" ] && { kill $SMI_PID 2>/dev/null; wait $SMI_PID 2>/dev/null; }
    # End what is left of the sweep's process group (started by this script), TERM then KILL.
    left=$(ps -eo pid=,pgid= 2>/dev/null | awk -v g="$SWEEP_PID" '$2 == g { printf "%s ", $1 }')
    if [ -n "${left// /}" ]; then
      echo "ending processes the sweep left: $left"
      kill -TERM -- -"$SWEEP_PID" 2>/dev/null; sleep 3; kill -KILL -- -"$SWEEP_PID" 2>/dev/null
    fi
    case $src in
      0) SWEEP_STATUS="ok" ;;
      124|137) SWEEP_STATUS="timed out after ${SWEEP_TIMEOUT}s" ;;
      *) SWEEP_STATUS="failed (exit $src)" ;;
    esac
    echo "SWEEP: $SWEEP_STATUS, wall time $SWEEP_WALL s"
    "$PY" - "$OUT" "$GPUS_PER_TRIAL" <<'EOF'
import json, re, sqlite3, sys
from pathlib import Path
out, gpt = Path(sys.argv[1]), float(sys.argv[2])
summary = {}
# MLflow: one child run per trial, opened at trial start and closed at its end.
try:
    db = sqlite3.connect(f"file:{out / 'mlflow.db'}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT r.run_uuid, r.name, r.status, r.start_time, r.end_time FROM runs r "
        "JOIN experiments e ON r.experiment_id = e.experiment_id "
        "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId' "
        "WHERE e.name = 'gpu-smoke' AND r.lifecycle_stage = 'active'").fetchall()
    events = []
    for _, _, _, start, end in rows:
        if start:
            events += [(start, 1), (end or start, -1)]
    level = peak = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):   # an end before a start at the same ms
        level += d
        peak = max(peak, level)
    durations = [(e - s) / 1000 for _, _, _, s, e in rows if s and e]
    summary["mlflow"] = {"trials": len(rows), "finished": sum(r[2] == "FINISHED" for r in rows),
                         "failed": sum(r[2] == "FAILED" for r in rows), "max_overlapping_trials": peak,
                         "trial_s": sorted(durations)}
    print(f"trials (MLflow child runs): {len(rows)}, {summary['mlflow']['finished']} finished, "
          f"{summary['mlflow']['failed']} failed; at most {peak} at once (overlap of their start/end times); "
          f"trial seconds {', '.join(f'{d:.1f}' for d in sorted(durations))}")
except Exception as e:  # noqa: BLE001
    summary["mlflow"] = {"error": f"{type(e).__name__}: {e}"}
    print(f"MLflow store unreadable: {summary['mlflow']['error']}")
# The sweep's console: "[0:00:15] trials 1/5: 1 done, 2 running, ..." and its header line.
log = (out / "sweep.log").read_text(errors="replace") if (out / "sweep.log").exists() else ""
running = [int(m) for m in re.findall(r"\btrials \d+/\d+: \d+ done, (\d+) running", log)]
summary["console_max_running"] = max(running) if running else None
header = re.search(r"^sweep .*$", log, re.M)
summary["console_header"] = header.group(0) if header else None
print(f"console: max 'running' in the status lines {summary['console_max_running']}"
      + (f"; header: {header.group(0)}" if header else ""))
# nvidia-smi samples: processes holding a context on the GPU, and its memory, while the sweep ran.
smi = out / "nvidia_smi.csv"
if smi.exists():
    samples = [ln.split(",", 4) for ln in smi.read_text().splitlines()[1:] if ln.count(",") >= 4]
    apps = [int(s[3]) for s in samples if s[3].isdigit()]
    mem = [float(s[2]) for s in samples if s[2].replace(".", "").isdigit()]
    util = [float(s[1]) for s in samples if s[1].replace(".", "").isdigit()]
    pids = {a.split(":")[0] for s in samples for a in s[4].split(";") if a}
    summary["nvidia_smi"] = {"samples": len(samples), "max_compute_apps": max(apps, default=None),
                             "distinct_pids": len(pids), "first_mem_used_mib": mem[0] if mem else None,
                             "max_mem_used_mib": max(mem, default=None), "max_util_pct": max(util, default=None),
                             "mean_util_pct": sum(util) / len(util) if util else None}
    print(f"nvidia-smi ({len(samples)} samples, 1/s): at most {max(apps, default=0)} processes on the GPU at once, "
          f"{len(pids)} distinct" + ("" if apps and max(apps) else " (none listed: a sandbox may hide them)")
          + f"; memory used {mem[0] if mem else 0:.0f} MiB at the start, up to {max(mem, default=0):.0f} MiB; "
          f"utilization up to {max(util, default=0):.0f}%, mean {summary['nvidia_smi']['mean_util_pct'] or 0:.0f}% "
          f"(the trials used the GPU if memory rose)")
peak = summary.get("mlflow", {}).get("max_overlapping_trials") or 0
cons = summary["console_max_running"] or 0
smi_apps = (summary.get("nvidia_smi") or {}).get("max_compute_apps") or 0
two = max(peak, cons) >= 2
if gpt == 0.5:
    verdict = ("YES: two trials ran at once on the one GPU" if two else
               "NO: never more than one trial at once") + f" (MLflow overlap {peak}, console {cons}, nvidia-smi processes {smi_apps})"
else:
    verdict = f"(CPU test run, --gpus-per-trial {gpt:g}) at most {max(peak, cons)} trials at once"
summary["two_per_gpu"] = two if gpt == 0.5 else None
summary["verdict"] = verdict
print("TWO PER GPU: " + verdict)
(out / "sweep_summary.part.json").write_text(json.dumps(summary, indent=2))
EOF
    tar -czf "$OUT/sweep_runs.tar.gz" --exclude="*.ckpt" --exclude="*.safetensors" -C "$WORK" . 2>/dev/null && rm -rf "$WORK" \
      || echo "could not archive $WORK (left there)"
  fi
  echo "part 1: $(since "$t1") s"
fi

# ---------------------------------------------------------------- parts 2-4: train-step throughput
if [ "$HAS_CUDA" = 1 ]; then
  left=$(awk -v b="$BUDGET" -v e="$(since "$T0")" 'BEGIN { v = b - e - 15; printf "%d", (v < 60 ? 60 : v) }')
  banner "parts 2-4: train-step throughput, memory, MFU (budget ${left}s, hard cap $((left + 45))s)"
  t2=$(now)
  timeout -k 10 $((left + 45)) "$PY" "$ROOT/benchmarks/gpu_train_step.py" --device cuda --batch 128 --img-size 224 \
    --warmup 10 --steps 10 --windows 5 --modes fp32,bf16,bf16_cl,bf16_cl_compile \
    --peak-tflops "$PEAK_TFLOPS" --time-budget "$left" --json "$OUT/gpu_train_step.json"
  BENCH_RC=$?
  [ $BENCH_RC -eq 124 ] || [ $BENCH_RC -eq 137 ] && echo "gpu_train_step.py hit its hard cap: the JSON holds what it measured"
  echo "parts 2-4: $(since "$t2") s (exit $BENCH_RC)"
else
  BENCH_RC=0
  banner "parts 2-4: skipped (no CUDA)"
fi

# ---------------------------------------------------------------- summary
banner "summary"
"$PY" - "$OUT" "$SWEEP_STATUS" "${SWEEP_WALL:-}" "$(since "$T0")" "$PEAK_TFLOPS" <<'EOF'
import json, sys
from pathlib import Path
out, status, wall, total, peak = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
s = {"sweep": {"status": status, "wall_s": float(wall) if wall else None}, "total_s": total, "peak_tflops": float(peak)}
part = out / "sweep_summary.part.json"
if part.exists():
    s["sweep"].update(json.loads(part.read_text()))
    part.unlink()
bench = out / "gpu_train_step.json"
if bench.exists():
    b = json.loads(bench.read_text())
    s["train_step"] = {"ratios_mfsearch_over_timm": b.get("ratios"), "macs_per_image": b.get("macs_per_image"),
                       "rows": [{k: r.get(k) for k in ("mode", "impl", "img_s", "peak_mem_alloc_mib", "mfu", "error",
                                                       "skipped", "first_step_s")} for r in b.get("rows", [])],
                       "gpu": b.get("env", {}).get("gpu")}
print(f"sweep: {status}" + (f", wall {float(wall):.1f} s" if wall else "") +
      (f"; {s['sweep'].get('verdict')}" if s["sweep"].get("verdict") else ""))
for mode, r in ((s.get("train_step") or {}).get("ratios_mfsearch_over_timm") or {}).items():
    print(f"train step {mode}: mfsearch/timm = {r:.3f}")
print(f"total: {total:.1f} s")
(out / "gpu_check_summary.json").write_text(json.dumps(s, indent=2))
EOF
echo "files in $OUT:"; ls -la "$OUT"
finish $BENCH_RC
