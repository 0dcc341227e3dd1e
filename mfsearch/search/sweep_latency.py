"""The sweep's comparable latency: every finished trial's architecture measured on the driver's
host, one after another, after all trainings are done (``mfsearch.latency``'s protocol).

Why not inside the trials: there the measurement shares the cores with the other trials' trainings,
so the same architecture read 1.8 ms in one sweep and 4.4 ms in another. Here nothing else of the
sweep runs, each architecture is measured once (trials of one architecture share it), and each run
records the protocol (``latency.*`` params) next to ``cost/latency_ms`` and its spread.
A resumed sweep measures only the runs that have no ``cost/latency_ms`` yet.
"""
from __future__ import annotations

import sys
import time

import yaml

from .. import metrics as M
from ..config import parse_arch
from ..latency import LatencyProtocol, measure_arch
from ..tracking import Store
from ..tracking.tags import FINISHED_STATUSES, STATUS_TAG, TRIAL_TAG

LATENCY_SPREAD = "cost/latency_iqr_ms"


def measure_sweep_latency(tracking_uri: str, experiment_id: str, parent_run_id: str,
                          protocol: LatencyProtocol = LatencyProtocol(), progress: bool = True) -> dict[str, float]:
    """trial id -> ``cost/latency_ms`` for the sweep's finished trials; logged to their runs."""
    store = Store.open(tracking_uri)
    runs = [r for r in store.children(experiment_id, parent_run_id)
            if TRIAL_TAG in r.tags and r.tags.get(STATUS_TAG) in FINISHED_STATUSES]
    out = {r.tags[TRIAL_TAG]: r.metrics[M.COST_LATENCY_MS] for r in runs if M.COST_LATENCY_MS in r.metrics}
    todo = [r for r in runs if M.COST_LATENCY_MS not in r.metrics]
    if not todo:
        return out
    if progress:
        print(f"measuring latency of {len(todo)} trials serially ({protocol.threads} thread, batch "
              f"{protocol.batch}, median of {protocol.rounds}x{protocol.repeats} after warm-up)", flush=True)
    started, by_arch = time.monotonic(), {}
    for run in todo:
        text = store.artifact_text(run.run_id, "arch.yaml")
        if text is None:
            continue
        if text not in by_arch:
            try:
                by_arch[text] = measure_arch(parse_arch(yaml.safe_load(text)), protocol)
            except Exception as err:  # never lose a finished sweep to its latency pass: say so, go on
                print(f"latency: trial {run.tags[TRIAL_TAG]} not measured ({type(err).__name__}: {err})",
                      file=sys.stderr, flush=True)
                by_arch[text] = None
        m = by_arch[text]
        if m is None:
            continue
        store.log_batch(run.run_id, metrics={M.COST_LATENCY_MS: m.median_ms, LATENCY_SPREAD: m.spread_ms},
                        params=m.to_params())
        out[run.tags[TRIAL_TAG]] = m.median_ms
    if progress:
        print(f"latency: {len(by_arch)} architectures in {time.monotonic() - started:.1f} s", flush=True)
    return out
