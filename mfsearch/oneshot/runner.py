"""`search: {algorithm: one-shot}`: train one supernet as one Ray trial, search it, log like a sweep.

The trial (``run_supernet_trial``) trains the supernet for ``train.epochs`` (every epoch reported
with a checkpoint: the supernet's weights and the whole training state, so a retried or resumed
trial continues), then evaluates sub-networks with inherited weights on the validation split and
writes the result (``search.json``) into its last checkpoint. The search runs inside the trial so
that it uses the trial's resources (a GPU on a cluster) and a lost node redoes only the search.

The driver then logs what a from-scratch sweep logs, so ``pareto``, ``dashboard``, ``export`` and
``confirm`` work unchanged: one child run per front member and per baseline family (its mixer
pattern in the space's skeleton), with inherited ``val/acc1``, analytic ``cost/*``, ``arch.yaml``
and the inherited ``weights.safetensors``; plus a ``supernet`` child run (no trial tag) with the
training curves, and on the sweep run the table of every evaluated sub-network
(``oneshot_evaluated.csv``).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .. import metrics as M
from ..errors import MfsearchError
from ..search.space import SearchSpec

SEARCH_FILE = "search.json"
SUPERNET_WEIGHTS = "supernet.safetensors"
TRAINING_STATE = "training.ckpt"
PHASE = "oneshot/phase"          # reported: 0 training, 1 searching, 2 done
EVALUATED = "oneshot/evaluated"
REJECTED = "oneshot/rejected"


@dataclasses.dataclass(frozen=True)
class OneShotPlan:
    spec: SearchSpec          # validated by the driver; the data root made absolute
    num_classes: int
    img_size: int
    threads: int


def build(plan: OneShotPlan):
    """(space, supernet, sampler, probes) of a plan; the same on the driver and in the trial."""
    from .sampling import PathSampler
    from .space import OneShotSpace

    space = OneShotSpace(plan.spec, plan.num_classes, plan.img_size)
    torch.manual_seed(plan.spec.recipe.seed)
    supernet = space.build_supernet()
    o = plan.spec.search.oneshot
    sampler = PathSampler(space, o.sampling, plan.spec.search.seed, o.paths_per_step)
    probes, _ = space.family_members(supernet)
    return space, supernet, sampler, probes


def run_supernet_trial(config: dict[str, Any], plan: OneShotPlan) -> None:
    from ray import tune
    from safetensors.torch import load_file, save_file

    from ..cost import count_config
    from ..training.checkpoint import CHECKPOINT_NAME
    from .evaluate import Evaluated, InheritedEvaluator, cost_metrics, search
    from .training import train_supernet

    os.environ.setdefault("PL_DISABLE_FORK", "1")
    torch.set_num_threads(plan.threads)
    spec = plan.spec
    space, supernet, sampler, probes = build(plan)
    restored = tune.get_checkpoint()
    with contextlib.ExitStack() as held:
        state_dir = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="mfsearch-supernet-")))
        resume_from = None
        if restored is not None:
            folder = Path(held.enter_context(restored.as_directory()))
            if (folder / SEARCH_FILE).is_file():   # finished before the driver went away: nothing to redo
                tune.report({PHASE: 2, M.EPOCHS_REACHED: spec.recipe.epochs}, checkpoint=restored)
                return
            resume_from = folder / TRAINING_STATE if (folder / TRAINING_STATE).is_file() else None
        train_started = time.monotonic()

        def report(metrics: dict, epoch: int, model) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                          str(Path(tmp) / SUPERNET_WEIGHTS))
                _link_or_copy(state_dir / CHECKPOINT_NAME, Path(tmp) / TRAINING_STATE)
                shares = {f"supernet/mixer_share/{k}": v for k, v in sampler.usage_shares().items()}
                tune.report({**metrics, **shares, "supernet/unfair_paths": sampler.unfair_paths, PHASE: 0,
                             M.EPOCHS_REACHED: epoch}, checkpoint=tune.Checkpoint.from_directory(tmp))

        trained = train_supernet(supernet, sampler, probes, spec.data, spec.recipe, sinks=[report],
                                 checkpoint_dir=state_dir, resume_from=resume_from, threads=plan.threads)
        if resume_from is not None and not trained.history:
            # Resumed after the last epoch: the weights are the checkpoint's (fit trained nothing).
            supernet.load_state_dict(load_file(str(Path(resume_from).parent / SUPERNET_WEIGHTS)))
        train_s = time.monotonic() - train_started

        evaluator = InheritedEvaluator.from_datamodule(supernet, trained.datamodule)
        baselines = [Evaluated(cfg, {}, {**evaluator(cfg), **cost_metrics(count_config(cfg))}, family)
                     for family, cfg in probes.items()]
        outcome = search(space, supernet, evaluator, spec.search.num_samples, spec.search.seed,
                         progress=lambda n, rejected: tune.report({PHASE: 1, EVALUATED: n, REJECTED: rejected,
                                                                   M.EPOCHS_REACHED: spec.recipe.epochs}),
                         every=10.0)
        result = {"method": outcome.method, "rejected": outcome.rejected, "search_s": outcome.seconds,
                  "train_s": train_s, "eval_ms": 1000 * evaluator.seconds / max(1, len(evaluator.cache)),
                  "front": outcome.front, "usage": sampler.usage_shares(), "unfair_paths": sampler.unfair_paths,
                  "paths_per_step": sampler.paths_per_step, "sampling": sampler.rule, "epochs": spec.recipe.epochs,
                  "skipped_baselines": space.family_members(supernet)[1],
                  "evaluated": [_record(e) for e in outcome.evaluated], "baselines": [_record(e) for e in baselines]}
        with tempfile.TemporaryDirectory() as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in supernet.state_dict().items()},
                      str(Path(tmp) / SUPERNET_WEIGHTS))
            (Path(tmp) / SEARCH_FILE).write_text(json.dumps(result))
            tune.report({PHASE: 2, EVALUATED: len(outcome.evaluated), M.EPOCHS_REACHED: spec.recipe.epochs},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def _record(e) -> dict[str, Any]:
    return {"family": e.family, "params": e.params, "arch": e.cfg.to_dict(), "metrics": e.metrics}


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        import shutil
        shutil.copyfile(source, dest)


def _has_search(checkpoint) -> bool:
    with checkpoint.as_directory() as folder:
        return (Path(folder) / SEARCH_FILE).is_file()


def evaluated_csv(result: dict) -> str:
    """Every evaluated sub-network (and the baselines) as one table, front members marked."""
    from ..config import parse_arch
    from .space import arch_key, params_of

    front = set(result["front"])
    rows = []
    for i, rec in enumerate(result["evaluated"]):
        cfg = parse_arch(rec["arch"])
        rows.append({"family": "searched", "front": int(i in front), "arch": arch_key(cfg), **params_of(cfg),
                     **rec["metrics"]})
    for rec in result["baselines"]:
        cfg = parse_arch(rec["arch"])
        rows.append({"family": rec["family"], "front": "", "arch": arch_key(cfg), **params_of(cfg), **rec["metrics"]})
    fields = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def fit_oneshot(spec: SearchSpec, baselines: list, num_classes: int, img_size: int, name: str, storage: Path,
                tracking_uri: str, parent_run_id: str, options, resume: bool):
    """The one-shot counterpart of ``runner._fit``: returns the same ``SweepResult``.

    ``baselines`` (the paper-exact families) are not members of the supernet (their norms and heads
    differ from the space's skeleton); their token-mixer patterns are (``OneShotSpace.family_members``).
    """
    from ray import tune

    from ..data.locate import resolve_root
    from ..search.runner import SweepResult, _one_line, fit_signed, make_tuner, start_ray
    from ..search.state_integrity import StateSigner
    from .mlflow_log import SupernetLogger, delete_members, log_members, supernet_run

    start_ray(options.address)
    res = spec.resources
    root = resolve_root(spec.data)
    data = dataclasses.replace(spec.data, root=str(root)) if root is not None else spec.data
    plan = OneShotPlan(dataclasses.replace(spec, data=data), num_classes, img_size, max(1, int(res.cpus_per_trial)))
    trainable = tune.with_resources(tune.with_parameters(run_supernet_trial, plan=plan),
                                    {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial})
    path = str(storage / name)
    run_id = supernet_run(tracking_uri, name, parent_run_id, spec)
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        callbacks = [SupernetLogger(tracking_uri, name, run_id, spec.train.epochs, spec.search.num_samples,
                                    every=options.status_every), StateSigner(Path(path))]
        tuner = make_tuner(spec, trainable, None, None, 1, 1, name, storage, callbacks)
    o = spec.search.oneshot
    print(f"one-shot sweep {name}: a supernet of the space's {len(spec.space.stages)} stages, {spec.train.epochs} epochs, "
          f"{o.sampling} sampling; then {spec.search.num_samples} sub-networks evaluated with inherited weights; "
          f"{res.cpus_per_trial:g} CPU / {res.gpus_per_trial:g} GPU; MLflow {tracking_uri}", flush=True)
    grid = fit_signed(tuner, Path(path))
    r = grid[0]
    if r.error:
        raise MfsearchError(f"one-shot sweep {name}: the supernet trial failed: {_one_line(r.error)}")
    if r.checkpoint is None or not _has_search(r.checkpoint):
        # No error and no search result: Tune stopped the experiment (Ctrl-C) and saved its state.
        print(f"one-shot sweep {name} interrupted before its search finished: continue it with "
              f"`mfsearch run --resume {name}`", flush=True)
        raise KeyboardInterrupt
    with r.checkpoint.as_directory() as folder:
        result = json.loads((Path(folder) / SEARCH_FILE).read_text())
        delete_members(tracking_uri, name, parent_run_id)   # a resumed driver logs the members again
        _, supernet, _, _ = build(plan)
        from safetensors.torch import load_file
        supernet.load_state_dict(load_file(str(Path(folder) / SUPERNET_WEIGHTS)))
    trials = log_members(tracking_uri, name, parent_run_id, spec, supernet, result, evaluated_csv(result))
    summary = {k: result[k] for k in ("method", "search_s", "train_s", "eval_ms", "sampling", "paths_per_step",
                                      "epochs", "unfair_paths", "skipped_baselines")}
    summary.update(evaluated=len(result["evaluated"]), front=len(result["front"]))
    return SweepResult(name, path, tracking_uri, parent_run_id, trials, result["rejected"], {}, {}, 0.0,
                       oneshot=summary)
