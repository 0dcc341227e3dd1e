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

COST_PARAMS = "cost/params"
COST_FROZEN_PARAMS = "cost/frozen_params"
COST_MACS = "cost/macs"
COST_LATENCY_MS = "cost/latency_ms"
