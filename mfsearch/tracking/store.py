"""The one door to an MLflow store: every read and write of mfsearch goes through ``Store``.

Why a door of our own rather than ``MlflowClient`` everywhere:
- **Failures are one line.** An unreachable server fails in seconds naming its URI (MLflow's client
  retries a refused connection for minutes), and any other store error becomes ``MfsearchError``.
- **Transient failures are retried, once, here.** A tracking server that restarts or a SQLite file
  that another process holds locked is retried with backoff for ``MFSEARCH_TRACKING_RETRY_S``
  seconds (default 300) before the call fails; MLflow's own HTTP retries are turned down so that
  this is the only retry loop and its deadline is the one that holds.
- **Concurrent first use is safe.** Two processes opening one fresh SQLite file race MLflow's
  schema creation ("table ... already exists"); two creating one experiment race its name. Store
  initialisation runs under a file lock beside the database, and experiment creation treats
  "already exists" as success.
- **Callers get plain records** (``RunView``, ``ExperimentView``), not MLflow entities, so an MLflow
  upgrade touches this package only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from ..errors import MfsearchError
from .tags import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

DEFAULT_DB = "mlflow.db"
REACH_TIMEOUT_S = 5.0
RETRY_ENV = "MFSEARCH_TRACKING_RETRY_S"
DEFAULT_RETRY_S = 300.0
PAGE = 1000

T = TypeVar("T")


def default_tracking_uri() -> str:
    """``sqlite:///<cwd>/mlflow.db``, absolute so that trials in other directories share it."""
    return f"sqlite:///{Path.cwd().resolve() / DEFAULT_DB}"


def resolve_tracking_uri(uri: str | None) -> str:
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if "://" not in uri:  # a bare path: a SQLite file there
        uri = f"sqlite:///{Path(uri).resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail in seconds, with one line naming the URI, when an http(s) tracking server does not answer.

    Any HTTP answer, even 401 or 404, means a server is there."""
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


@dataclasses.dataclass(frozen=True)
class ExperimentView:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]


@dataclasses.dataclass(frozen=True)
class RunView:
    run_id: str
    experiment_id: str
    run_name: str
    status: str                  # RUNNING | FINISHED | FAILED | KILLED
    lifecycle_stage: str         # active | deleted
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]    # each metric's last value

    @property
    def active(self) -> bool:
        return self.lifecycle_stage == "active"


def _run_view(run) -> RunView:
    info, data = run.info, run.data
    return RunView(info.run_id, info.experiment_id, info.run_name or "", info.status, info.lifecycle_stage,
                   int(info.start_time or 0), dict(data.tags), dict(data.params),
                   {k: float(v) for k, v in data.metrics.items()})


def _experiment_view(exp) -> ExperimentView:
    return ExperimentView(exp.experiment_id, exp.name, exp.artifact_location or "", exp.lifecycle_stage,
                          dict(exp.tags))


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def _is_transient(err: BaseException) -> bool:
    """A failure worth retrying: the server is (briefly) gone or busy, or SQLite is locked."""
    text = str(err).lower()
    return any(s in text for s in ("database is locked", "connection refused", "max retries exceeded",
                                   "connection aborted", "remote end closed", "read timed out",
                                   "temporarily unavailable", "502", "503", "504"))


class Store:
    """One MLflow tracking store (a SQLite file or a server), opened with ``Store.open``."""

    def __init__(self, uri: str, client, retry_s: float):
        self.uri, self._client, self.retry_s = uri, client, retry_s
        self._warned = False

    @classmethod
    def open(cls, tracking_uri: str | None = None, *, must_exist: bool = False) -> "Store":
        """The store at ``tracking_uri`` (default ./mlflow.db). ``must_exist``: a missing SQLite
        file is an error instead of a new, empty store (reading commands never create one)."""
        uri = resolve_tracking_uri(tracking_uri)
        check_reachable(uri)
        path = sqlite_path(uri)
        if must_exist and path is not None and not path.is_file():
            raise MfsearchError(f"no MLflow store at {path}: run where the sweep wrote mlflow.db, "
                                f"or pass --tracking-uri")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small file is noise
        # This door's retry loop is the only one (see the module docstring): MLflow's own HTTP
        # retries would otherwise back off for minutes inside each call.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        from mlflow.tracking import MlflowClient
        # After the import: importing mlflow configures its loggers (INFO).
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
        # Its database errors are logged with their SQL before they are raised: raised, they reach
        # `_call`, which retries them or reports them in one line.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

        retry_s = float(os.environ.get(RETRY_ENV, DEFAULT_RETRY_S))
        with _init_lock(path):  # MLflow creates (or migrates) a SQLite schema on first use
            store = cls(uri, MlflowClient(tracking_uri=uri, registry_uri=uri), retry_s)
            store._call(store._client.search_experiments, max_results=1)          # the tracking store's
            store._call(store._client.search_registered_models, max_results=1)   # the registry's
        return store

    # -- the retry loop ---------------------------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        deadline = time.monotonic() + self.retry_s
        delay = 0.5
        while True:
            try:
                return fn(*args, **kwargs)
            except MfsearchError:
                raise
            except Exception as err:
                remaining = deadline - time.monotonic()
                if not _is_transient(err) or remaining <= 0:
                    raise MfsearchError(f"MLflow store {self.uri}: {_one_line(err)}") from err
                if not self._warned:
                    print(f"mfsearch: MLflow store {self.uri} not answering ({_one_line(err)[:120]}); "
                          f"retrying for up to {self.retry_s:.0f} s", file=sys.stderr, flush=True)
                    self._warned = True
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 10.0)

    # -- experiments ------------------------------------------------------------------------------

    def experiment(self, name: str) -> ExperimentView | None:
        exp = self._call(self._client.get_experiment_by_name, name)
        return _experiment_view(exp) if exp is not None else None

    def experiment_by_id(self, experiment_id: str) -> ExperimentView:
        return _experiment_view(self._call(self._client.get_experiment, experiment_id))

    def ensure_experiment(self, name: str, artifact_location: str | None = None) -> str:
        """The id of experiment ``name``, created (tagged as a model-training experiment) if absent.
        Safe when several processes create it at once: the losers read the winner's."""
        exp = self.experiment(name)
        if exp is None:
            try:
                experiment_id = self._client.create_experiment(name, artifact_location=artifact_location)
            except Exception as err:
                exp = self.experiment(name)
                if exp is None:
                    raise MfsearchError(f"MLflow store {self.uri}: cannot create experiment {name!r}: "
                                        f"{_one_line(err)}") from err
                experiment_id = exp.experiment_id
        else:
            experiment_id = exp.experiment_id
        if exp is None or EXPERIMENT_KIND_TAG not in exp.tags:
            # MLflow 3 opens an experiment without this tag in its GenAI overview, whose runs
            # table shows no metric columns: ours are model-training experiments.
            self.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment_id

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(self._client.set_experiment_tag, experiment_id, key, value)

    def experiment_names(self) -> list[str]:
        from mlflow.entities import ViewType
        return [e.name for e in self._call(self._client.search_experiments, view_type=ViewType.ACTIVE_ONLY)]

    # -- runs -------------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, run_name: str | None, tags: Mapping[str, str]) -> RunView:
        return _run_view(self._call(self._client.create_run, experiment_id, run_name=run_name, tags=dict(tags)))

    def run(self, run_id: str) -> RunView | None:
        """The live run ``run_id``, None when there is none (or it was deleted)."""
        try:
            view = _run_view(self._call(self._client.get_run, run_id))
        except MfsearchError as err:
            if getattr(err.__cause__, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return view if view.active else None

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", *,
                    order_by: Sequence[str] | None = None, max_results: int | None = None) -> list[RunView]:
        """Live runs matching ``filter_string``, every page of them (or the first ``max_results``)."""
        from mlflow.entities import ViewType
        runs: list[RunView] = []
        token = None
        while True:
            want = PAGE if max_results is None else min(PAGE, max_results - len(runs))
            page = self._call(self._client.search_runs, list(experiment_ids), filter_string,
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=want,
                              order_by=list(order_by or []), page_token=token)
            runs += [_run_view(r) for r in page]
            token = page.token
            if not token or (max_results is not None and len(runs) >= max_results):
                return runs

    def children(self, experiment_id: str, parent_run_id: str, extra_filter: str = "") -> list[RunView]:
        from .tags import PARENT_TAG
        where = f"tags.`{PARENT_TAG}` = '{parent_run_id}'" + (f" and {extra_filter}" if extra_filter else "")
        return self.search_runs([experiment_id], where)

    def delete_run(self, run_id: str) -> None:
        self._call(self._client.delete_run, run_id)

    def log_batch(self, run_id: str, metrics: Mapping[str, float] | None = None, step: int = 0,
                  params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag
        now = int(time.time() * 1000)
        items_m = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()]
        items_p = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        items_t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        for i in range(0, max(len(items_m), len(items_p), len(items_t)), 100):  # MLflow's per-batch limit
            m, p, t = items_m[i:i + 100], items_p[i:i + 100], items_t[i:i + 100]
            if m or p or t:
                self._call(self._client.log_batch, run_id, metrics=m, params=p, tags=t)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return sorted((int(m.step), float(m.value)) for m in self._call(self._client.get_metric_history, run_id, key))

    def set_terminated(self, run_id: str, status: str) -> None:
        self._call(self._client.set_terminated, run_id, status)

    # -- artifacts --------------------------------------------------------------------------------

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifact, run_id, str(path), artifact_path)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(text)
            self.log_artifact(run_id, path)

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifacts, run_id, str(folder), artifact_path)

    def artifact_names(self, run_id: str) -> set[str]:
        return {a.path for a in self._call(self._client.list_artifacts, run_id)}

    def download_artifact(self, run_id: str, name: str, dest: str | Path) -> Path:
        return Path(self._call(self._client.download_artifacts, run_id, name, str(dest)))

    def artifact_text(self, run_id: str, name: str) -> str | None:
        """A small text artifact of a run, None when absent."""
        if name not in self.artifact_names(run_id):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            return self.download_artifact(run_id, name, tmp).read_text()

    # -- model registry ---------------------------------------------------------------------------

    def register_version(self, name: str, run_id: str, artifact_path: str, tags: Mapping[str, str]) -> str:
        """A new version of registered model ``name`` (created if absent) from a model folder logged
        to ``run_id``; returns the version number."""
        run = self._call(self._client.get_run, run_id)
        if self._call(self._client.search_registered_models, f"name = '{name}'") == []:
            try:
                self._client.create_registered_model(name)
            except Exception:  # created by another process meanwhile
                pass
        version = self._call(self._client.create_model_version, name, f"{run.info.artifact_uri}/{artifact_path}",
                             run_id=run_id, tags=dict(tags))
        return str(version.version)


@contextlib.contextmanager
def _init_lock(db: Path | None) -> Iterator[None]:
    """An exclusive lock beside a SQLite file while it is first opened (none for servers)."""
    if db is None:
        yield
        return
    import fcntl
    import hashlib
    # The lock lives in the temp folder, not beside the store: nothing for users to clean up.
    key = hashlib.sha1(str(db.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"mfsearch-store-{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
