"""One metric naming scheme, used by Lightning logs, Ray Tune reports and MLflow alike."""
from __future__ import annotations

TRAIN_LOSS = "train/loss"
TRAIN_IMAGES_PER_S = "train/images_per_s"
VAL_LOSS = "val/loss"
VAL_ACC1 = "val/acc1"
VAL_ACC5 = "val/acc5"
TEST_LOSS = "test/loss"
TEST_ACC1 = "test/acc1"
TEST_ACC5 = "test/acc5"
LR = "lr"
EPOCH = "epoch"
# Reported by every trial each epoch: the fidelity its metrics were measured at (Tune's time attribute).
EPOCHS_REACHED = "epochs_reached"

COST_PARAMS = "cost/params"
COST_FROZEN_PARAMS = "cost/frozen_params"
COST_MACS = "cost/macs"
COST_LATENCY_MS = "cost/latency_ms"   # host, mfsearch.latency's protocol, measured serially by the sweep driver
# The same protocol measured inside a trial while other trials share the cores: contended, only an
# estimate for schedulers/searchers that need latency during the sweep; never compare it across sweeps.
COST_LATENCY_MS_IN_TRIAL = "cost/latency_ms_in_trial"


def during_sweep(metric: str) -> str:
    """The metric a scheduler or searcher reads for ``metric`` while trials run: the in-trial
    latency estimate stands in for ``cost/latency_ms``, which exists only after the trainings."""
    return COST_LATENCY_MS_IN_TRIAL if metric == COST_LATENCY_MS else metric
