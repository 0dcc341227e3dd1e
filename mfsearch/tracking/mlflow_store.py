"""Runs in an MLflow store: by default a local SQLite file in the working directory, no server.

Everything goes through ``MlflowClient`` with explicit run ids (no global "active run"), so several
runs can be written from one process (the sweep driver) without stepping on each other.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from ..config import ArchConfig
from ..errors import MfsearchError

DEFAULT_DB = "mlflow.db"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"     # read by the MLflow UI (3.x) to pick the experiment's view
EXPERIMENT_KIND = "custom_model_development"


def default_tracking_uri() -> str:
    """``sqlite:///<cwd>/mlflow.db``, absolute so that trials in other directories share it."""
    return f"sqlite:///{Path.cwd().resolve() / DEFAULT_DB}"


def resolve_tracking_uri(uri: str | None) -> str:
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if "://" not in uri:  # a bare path: a SQLite file there
        uri = f"sqlite:///{Path(uri).resolve()}"
    return uri


REACH_TIMEOUT_S = 5.0


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail in seconds, with one line naming the URI, when an http(s) tracking server does not answer.

    MLflow's client retries a refused connection with backoff for minutes before it gives up (seen:
    254 s for ``http://127.0.0.1:1``). Any HTTP answer, even 401 or 404, means a server is there."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise MfsearchError(f"tracking server {uri} is not reachable ({reason}); start it, or pass another "
                            f"--tracking-uri (default: sqlite:///./mlflow.db)") from None


def arch_params(cfg: ArchConfig) -> dict[str, str]:
    """Flattened per-stage params: ``stage0.mixer``, ``stage0.depth``, ... plus global fields."""
    out: dict[str, Any] = {
        "num_stages": cfg.num_stages, "img_size": cfg.img_size, "num_classes": cfg.num_classes,
        "head": cfg.head.type, "head.dropout": cfg.head.dropout, "drop_path_rate": cfg.drop_path_rate,
        "stem": f"k{cfg.stem.kernel_size}s{cfg.stem.stride}p{cfg.stem.padding}",
    }
    for i, s in enumerate(cfg.stages):
        mixers = s.block_mixers()
        out.update({
            f"stage{i}.mixer": "+".join(str(m) for m in mixers) if isinstance(s.mixer, tuple) else str(s.mixer),
            f"stage{i}.depth": s.depth, f"stage{i}.dim": s.dim, f"stage{i}.mlp_ratio": s.mlp_ratio,
            f"stage{i}.mlp_act": str(s.mlp_act), f"stage{i}.norm": str(s.norm),
            f"stage{i}.res_scale_init": s.res_scale_init, f"stage{i}.layer_scale_init": s.layer_scale_init,
        })
    return {k: str(v) for k, v in out.items()}


def flatten(prefix: str, data: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(flatten(name, value))
        else:
            out[name] = str(value)
    return out


class MlflowRun:
    """One MLflow run, created on ``start()`` and closed with ``finish()``/``fail()``."""

    def __init__(self, tracking_uri: str | None, experiment: str, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None, parent_run_id: str | None = None):
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        if parent_run_id:
            self.tags["mlflow.parentRunId"] = parent_run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import logging

            from mlflow.tracking import MlflowClient
            logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def start(self) -> "MlflowRun":
        check_reachable(self.tracking_uri)
        try:
            experiment = self.client.get_experiment_by_name(self.experiment)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.experiment)
            if experiment is None or EXPERIMENT_KIND_TAG not in experiment.tags:
                # MLflow 3 opens an experiment without this tag in its GenAI overview, whose runs
                # table shows no metric columns: ours are model-training experiments.
                self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            run = self.client.create_run(experiment_id, run_name=self.run_name, tags=self.tags)
        except Exception as err:  # an unreachable server or unusable store: one clear line
            raise MfsearchError(f"tracking: cannot use the MLflow store {self.tracking_uri}: "
                                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
        self.run_id, self.experiment_id = run.info.run_id, experiment_id
        return self

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's per-batch limit
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(text)
            self.log_artifact(path)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"
        self.set_tags({"error": message[:5000]})
        self.client.set_terminated(self.run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
