"""Every run and experiment tag mfsearch writes or reads, in one place.

MLflow's own tags (``mlflow.*``) are what its UI reads; ours (``mfsearch.*``) tie runs together:
a sweep run holds one child per trial; a confirm run (tagged with the sweep it confirms) holds one
run per architecture, each holding one run per seed.
"""
from __future__ import annotations

# MLflow's
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"      # read by the MLflow 3 UI to pick the experiment's view
EXPERIMENT_KIND = "custom_model_development"
SHARED_VIEW_TAG = "mlflow.sharedViewState."        # + a view key: a runs-table view every user sees

# mfsearch's
KIND_TAG = "mfsearch.kind"                  # sweep | confirm | confirm-arch | retrain
SWEEP_RUN_TAG = "mfsearch.sweep_run_id"     # on a confirm run: the sweep it confirms
CONFIRM_TAG = "mfsearch.confirm_run_id"     # on runs below a confirm run, and on the sweep run
SOURCE_TAG = "mfsearch.source_run_id"       # the sweep trial a confirmed or retrained run comes from
SOURCE_TRIAL_TAG = "mfsearch.source_trial_id"
SOURCE_SWEEP_TAG = "mfsearch.source_sweep"
SOURCE_URI_TAG = "mfsearch.source_tracking_uri"
FULL_TRAIN_TAG = "mfsearch.full_train"
TRIAL_TAG = "mfsearch.trial_id"
FAMILY_TAG = "mfsearch.family"
STATUS_TAG = "mfsearch.status"              # running | completed | stopped_early | failed
EPOCHS_TAG = "mfsearch.epochs_reached"
ARCH_TAG = "mfsearch.arch_key"
SEED_TAG = "mfsearch.seed"
NODE_TAG = "mfsearch.node_id"               # the Ray node that trained a trial (its last attempt)
HOST_TAG = "mfsearch.host"                  # that node's host name and IP
CHECKPOINT_TAG = "mfsearch.checkpoint"      # on a `train` run: its last.ckpt (absolute path), until it finishes
RESUMED_TAG = "mfsearch.resumed_from_epoch"  # on a resumed run: the epoch of the checkpoint it resumed from
RETRIES_TAG = "mfsearch.retries"            # times Tune restarted the trial after a failure (a lost node)
ACCURACY_TAG = "mfsearch.accuracy"          # "inherited": a one-shot member scored with supernet weights
ERROR_TAG = "error"

FINISHED_STATUSES = ("completed", "stopped_early")
CLAIMS_TAG = "mfsearch.claims"              # on a confirmed architecture's run: its verdicts (JSON)
SEEDS_MISSING_TAG = "mfsearch.seeds_missing"
INTERRUPTED_TAG = "mfsearch.interrupted"    # on a sweep run left RUNNING by an interrupt: `--resume` continues it
REJECTIONS_TAG = "mfsearch.rejection_reasons"
EXPORT_SWEEP_TAG = "mfsearch.sweep"         # on a registered model version
EXPORT_EPOCHS_TAG = "mfsearch.epochs"
