"""`mfsearch export`: chosen trials of a sweep as folders a user can load, deploy and retrain.

Each folder holds ``arch.yaml`` + ``weights.safetensors`` (``mfsearch.create_model`` reloads them),
the requested deployable forms, each checked against PyTorch, a ``README.md`` model card, and
``export.json`` (the source run, data and recipe: what `mfsearch retrain` reads).

All or nothing: every input is checked before anything is written, the folders are built in a
temporary folder beside ``--out`` and moved into place only once every model exported and
checked, so a failure leaves no half-written export behind.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from .. import metrics as M
from ..analysis.fronts import COST_AXES, build_front
from ..analysis.sweep_data import Sweep, TrialRecord, download_trial_files, load_sweep
from ..errors import ConfigError, MfsearchError
from .formats import export_onnx, export_torchscript, parse_formats
from .model_card import model_card

EXPORT_JSON = "export.json"


@dataclasses.dataclass(frozen=True)
class Selection:
    top_k: int | None = None
    run_ids: tuple[str, ...] = ()
    pareto: bool = False

    def check(self) -> None:
        chosen = sum([self.top_k is not None, bool(self.run_ids), self.pareto])
        if chosen != 1:
            raise ConfigError("selection", "give exactly one of --top-k K, --run-id ID, --pareto")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError("--top-k", f"must be at least 1, got {self.top_k}")


@dataclasses.dataclass(frozen=True)
class Exported:
    trial: TrialRecord
    folder: Path
    checks: dict[str, float]          # format -> max abs logit difference to PyTorch
    registered_version: str | None = None


def select(sweep: Sweep, selection: Selection) -> list[tuple[TrialRecord, str]]:
    """(trial, why it was chosen) for each trial to export, in a stable order."""
    if selection.run_ids:
        out = []
        for run_id in dict.fromkeys(selection.run_ids):
            trial = sweep.trial(run_id)
            if not trial.finished:
                raise MfsearchError(f"run {run_id} ({trial.label}) is {trial.status}: only finished trials export")
            out.append((trial, f"chosen by run id (val/acc1 {trial.metrics[M.VAL_ACC1]:.2f} % at {trial.epochs} epochs)"))
        return out
    front = build_front(sweep.finished, COST_AXES[0])  # MACs: the sweep's cost objective
    assert front is not None  # load_sweep guarantees finished trials, and every trial logs MACs
    if selection.pareto:
        return [(m.trial, "on the Pareto front of val/acc1 against MACs"
                 + (f" (dominates {', '.join(b.label for b in m.dominates)} at {m.trial.epochs} epochs, one seed; "
                    "`mfsearch confirm` says whether that holds)" if m.dominates else ""))
                for m in front.members]
    ranked = sorted(front.compared, key=lambda t: (-t.metrics[M.VAL_ACC1], t.metrics[M.COST_MACS], t.trial_id))
    return [(t, f"number {i} by val/acc1 among the trials at {front.fidelity} epochs")
            for i, t in enumerate(ranked[:selection.top_k], start=1)]


def check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise MfsearchError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MfsearchError(f"--out {out} exists and is not empty; pass --overwrite to replace it")


def export_sweep(ref: str, out: str | Path, selection: Selection, *, tracking_uri: str | None = None,
                 formats: Sequence[str] | str = ("onnx",), register: str | None = None,
                 overwrite: bool = False, progress=print) -> list[Exported]:
    """Export the trials of sweep ``ref`` that ``selection`` picks into ``out``/<family>-<trial>/."""
    selection.check()
    formats = parse_formats(formats) if isinstance(formats, str) else parse_formats(",".join(formats))
    out = Path(out)
    check_out(out, overwrite)
    sweep = load_sweep(ref, tracking_uri)
    chosen = select(sweep, selection)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would follow the folder into place
    try:
        exported = []
        for trial, why in chosen:
            folder_name = folder_name_for(trial)
            progress(f"exporting {folder_name}: {trial.describe()}")
            checks = _export_one(sweep, trial, staging / folder_name, folder_name, formats, why)
            exported.append(Exported(trial, out / folder_name, checks))
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if register:
        exported = [_register(sweep, e, register) for e in exported]
    return exported


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, limit: int = 80) -> str:
    """A folder name from text read out of MLflow tags (anyone who can write to the store sets
    those): letters, digits, ``_.-`` only, no leading dot (no ``..``, no hidden folder), bounded."""
    name = _UNSAFE.sub("-", str(text)).lstrip(".-")[:limit]
    return name or "unnamed"


def folder_name_for(trial: TrialRecord) -> str:
    return safe_name(f"{trial.family}-{trial.trial_id}")


def _export_one(sweep: Sweep, trial: TrialRecord, folder: Path, name: str, formats: Sequence[str],
                why: str) -> dict[str, float]:
    from ..api import create_model

    arch_path, weights_path = download_trial_files(sweep, trial, folder)
    model = create_model(str(arch_path), pretrained=str(weights_path)).eval()
    img_size = model.arch.img_size
    files = {"arch.yaml": "the architecture: `mfsearch.create_model(\"arch.yaml\")` builds it",
             "weights.safetensors": "the trained weights of the trial"}
    checks: dict[str, float] = {}
    if "onnx" in formats:
        checks["ONNX (onnxruntime)"] = export_onnx(model, img_size, folder / "model.onnx")
        files["model.onnx"] = "ONNX, input `images` [N, 3, H, W] -> `logits` [N, classes], dynamic batch"
    if "torchscript" in formats:
        checks["TorchScript"] = export_torchscript(model, img_size, folder / "model.ts")
        files["model.ts"] = "traced TorchScript: `torch.jit.load`"
    files[EXPORT_JSON] = "where it came from: sweep, trial run, data and recipe (read by `mfsearch retrain`)"
    (folder / EXPORT_JSON).write_text(json.dumps(_provenance(sweep, trial, why, checks), indent=2) + "\n")
    (folder / "README.md").write_text(model_card(sweep, trial, name, files, why, checks))
    return checks


def _provenance(sweep: Sweep, trial: TrialRecord, why: str, checks: dict[str, float]) -> dict:
    return {"sweep": sweep.name, "sweep_run_id": sweep.parent_run_id, "tracking_uri": sweep.tracking_uri,
            "run_id": trial.run_id, "trial_id": trial.trial_id, "family": trial.family, "epochs": trial.epochs,
            "selected": why, "metrics": trial.metrics, "data": sweep.data, "recipe": sweep.settings.get("recipe"),
            "recipe_name": sweep.params.get("train.recipe"), "checks": checks}


def _move_into_place(staging: Path, out: Path) -> None:
    """Swap the finished staging folder in for ``out`` (renames on one filesystem: no partial state)."""
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{staging.name.rsplit('-', 1)[-1]}")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def _register(sweep: Sweep, exported: Exported, name: str) -> Exported:
    from ..api import create_model
    from ..tracking.registry import register_model
    from ..tracking.tags import EXPORT_EPOCHS_TAG, EXPORT_SWEEP_TAG, FAMILY_TAG, TRIAL_TAG
    from .formats import example_input

    folder = exported.folder
    model = create_model(str(folder / "arch.yaml"), pretrained=str(folder / "weights.safetensors"))
    version = register_model(model, example_input(model.arch.img_size, 2).numpy(), name,
                             sweep.tracking_uri, exported.trial.run_id,
                             {EXPORT_SWEEP_TAG: sweep.name, TRIAL_TAG: exported.trial.trial_id,
                              FAMILY_TAG: exported.trial.family,
                              M.VAL_ACC1: f"{exported.trial.metrics[M.VAL_ACC1]:.2f}",
                              EXPORT_EPOCHS_TAG: str(exported.trial.epochs)})
    return dataclasses.replace(exported, registered_version=version)
