"""Runs-table views of a sweep's experiment that open in the MLflow UI with the right columns.

MLflow 3's UI opens experiments in its GenAI mode unless asked otherwise, and its runs table shows
no metric column until one is picked by hand. Two things the UI reads fix that without a click:
- the query parameter ``workflowType=machine_learning`` (its "Model training" mode, the runs table);
- a shared view: an experiment tag ``mlflow.sharedViewState.<key>`` holding the view's JSON
  (selected columns, sort, filter), opened with ``?viewStateShareKey=<key>`` — the mechanism behind
  the UI's own "Share" button, checked against MLflow 3.17's UI.
``mfsearch`` publishes one view per sweep and one per confirmation and prints their links.
"""
from __future__ import annotations

import json
from typing import Sequence

from .. import metrics as M
from .store import Store
from .tags import CLAIMS_TAG, FAMILY_TAG, KIND_TAG, PARENT_TAG, SHARED_VIEW_TAG, STATUS_TAG


def column(kind: str, name: str) -> str:
    """A runs-table column key as the UI writes it: ``metrics.`val/acc1```."""
    return f"{kind}.`{name}`"


SWEEP_VIEW = "mfsearch-sweep"
SWEEP_COLUMNS = ([column("metrics", m) for m in (M.VAL_ACC1, M.COST_MACS, M.COST_PARAMS, M.COST_LATENCY_MS,
                                                 M.EPOCHS_REACHED)]
                 + [column("tags", t) for t in (FAMILY_TAG, STATUS_TAG)]
                 + [column("params", f"stage{i}.mixer") for i in range(4)])
CONFIRM_VIEW = "mfsearch-confirm"
CONFIRM_COLUMNS = ([column("metrics", m) for m in ("confirm/val_acc1_mean", "confirm/val_acc1_ci_low",
                                                   "confirm/val_acc1_ci_high", "confirm/test_acc1_mean",
                                                   "sweep/val_acc1", "cost/macs", "cost/params", "confirm/seeds")]
                   + [column("tags", t) for t in (FAMILY_TAG, CLAIMS_TAG)])


def publish_view(store: Store, experiment_id: str, key: str, columns: Sequence[str], order_by: str | None = None,
                 ascending: bool = False, search_filter: str = "") -> None:
    state = {"selectedColumns": list(columns), "searchFilter": search_filter, "orderByAsc": ascending,
             **({"orderByKey": order_by} if order_by else {})}
    store.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))


def view_url(server: str, experiment_id: str, key: str) -> str:
    """The link that opens ``key`` in the runs table of a running ``mlflow ui`` at ``server``."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning"


def publish_sweep_view(store: Store, experiment_id: str, parent_run_id: str) -> None:
    """The sweep's trials (children of its run), most accurate first."""
    publish_view(store, experiment_id, SWEEP_VIEW, SWEEP_COLUMNS, column("metrics", "val/acc1"),
                 search_filter=f"tags.`{PARENT_TAG}` = '{parent_run_id}'")


def publish_confirm_view(store: Store, experiment_id: str) -> None:
    publish_view(store, experiment_id, CONFIRM_VIEW, CONFIRM_COLUMNS, column("metrics", "confirm/val_acc1_mean"),
                 search_filter=f"tags.`{KIND_TAG}` = 'confirm-arch'")
