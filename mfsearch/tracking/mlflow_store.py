"""Runs in an MLflow store: by default a local SQLite file in the working directory, no server.

Everything goes through ``Store`` (the one door, ``store.py``) with explicit run ids (no global
"active run"), so several runs can be written from one process (the sweep driver) without stepping
on each other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import ArchConfig
from .store import DEFAULT_DB, Store, check_reachable, default_tracking_uri, resolve_tracking_uri  # noqa: F401
from .tags import ERROR_TAG, PARENT_TAG


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
    """One MLflow run, created on ``start()`` (or attached to with ``attach``) and closed with
    ``finish()``/``fail()``."""

    def __init__(self, tracking_uri: str | None, experiment: str, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None, parent_run_id: str | None = None,
                 store: Store | None = None):
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        if parent_run_id:
            self.tags[PARENT_TAG] = parent_run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._store = store   # shared by a writer of many runs: one connection, one retry budget

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.tracking_uri)
        return self._store

    def start(self) -> "MlflowRun":
        experiment_id = self.store.ensure_experiment(self.experiment)
        run = self.store.create_run(experiment_id, self.run_name, self.tags)
        self.run_id, self.experiment_id = run.run_id, experiment_id
        return self

    @classmethod
    def attach(cls, tracking_uri: str, experiment: str, run_id: str, store: Store | None = None) -> "MlflowRun":
        """An existing run, to write more to it (a resumed sweep's parent, a sweep's confirm tag)."""
        run = cls(tracking_uri, experiment, store=store)
        found = run.store.run(run_id)
        if found is None:
            from ..errors import MfsearchError
            raise MfsearchError(f"no run {run_id} in {run.tracking_uri}")
        run.run_id, run.experiment_id = run_id, found.experiment_id
        return run

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.store.log_batch(self.run_id, params=params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.store.log_batch(self.run_id, metrics=metrics, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.store.log_batch(self.run_id, tags=tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.store.log_artifact(self.run_id, path, artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self.store.log_text(self.run_id, text, name)

    def finish(self) -> None:
        self.store.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.set_tags({ERROR_TAG: message[:5000]})
        self.store.set_terminated(self.run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
