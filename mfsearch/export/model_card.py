"""The README.md model card of an exported architecture: what it is, how it was measured, how to load it.

The accuracy of a search trial is a *search* number: measured on the held-out validation split after
the sweep's (usually short) budget. The card says so, next to the fidelity, so nobody mistakes it
for a final result; `mfsearch retrain` gives the full-budget test accuracy.
"""
from __future__ import annotations

from typing import Any

from .. import metrics as M
from ..analysis.sweep_data import Sweep, TrialRecord


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}{unit}"


def model_card(sweep: Sweep, trial: TrialRecord, folder: str, files: dict[str, str], why: str,
               checks: dict[str, float]) -> str:
    m = trial.metrics
    data = sweep.data
    recipe: dict[str, Any] = sweep.settings.get("recipe") or {}
    search = sweep.settings.get("search") or {}
    full = recipe.get("epochs")
    fidelity = f"{trial.epochs} epoch{'s' if trial.epochs != 1 else ''}" + (
        f" of the sweep's {full}" if full and full != trial.epochs else " (the sweep's full budget)" if full else "")
    lines = [
        f"# {folder}",
        "",
        f"A MetaFormer architecture from the mfsearch sweep **{sweep.name}**: trial `{trial.trial_id}` "
        f"({'the paper family ' + trial.family if trial.is_baseline else 'a searched architecture'}), "
        f"exported because it is {why}.",
        "",
        "## Architecture",
        "",
        "| stage | token mixer | depth | width | MLP ratio | MLP act | norm |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(trial.stages):
        ratio = "-" if s.mlp_ratio is None else f"{s.mlp_ratio:g}"
        lines.append(f"| {i} | {s.mixer} | {s.depth} | {s.dim} | {ratio} | {s.mlp_act or '-'} | {s.norm or '-'} |")
    lines += [
        "",
        f"Input {sweep.img_size or trial.params.get('img_size')} px, {trial.params.get('num_classes', '?')} classes, "
        f"head `{trial.params.get('head', '?')}`, stem `{trial.params.get('stem', '?')}`. "
        "`arch.yaml` holds the complete configuration.",
        "",
        "## Cost and accuracy",
        "",
        "| | |",
        "|---|---|",
        f"| params (trainable) | {_fmt(m.get(M.COST_PARAMS), 1e6, 3, ' M')} |",
        f"| frozen params (random mixing) | {_fmt(m.get(M.COST_FROZEN_PARAMS), 1e6, 3, ' M')} |",
        f"| MACs per image | {_fmt(m.get(M.COST_MACS), 1e6, 2, ' M')} |",
        f"| latency (host CPU, batch 1, during the sweep) | {_fmt(m.get(M.COST_LATENCY_MS), 1, 2, ' ms')} |",
        f"| {M.VAL_ACC1} | {_fmt(m.get(M.VAL_ACC1))} % |",
        f"| {M.VAL_ACC5} | {_fmt(m.get(M.VAL_ACC5))} % |",
        f"| fidelity | {fidelity} |",
        "",
        "Accuracy is top-1 on the validation split held out from the training data, after the search "
        "budget above - a number for ranking architectures, not a final result. Retrain it at a full "
        f"budget and measure it on the test split with `mfsearch retrain {folder} --epochs N`.",
        "",
        "## Data and recipe of the search",
        "",
        f"- data: `{data.get('dataset', '?')}` at {sweep.img_size or '?'} px; train subset "
        f"{data.get('train_subset') or 'all'}, validation subset {data.get('val_subset') or 'all'} "
        f"(val fraction {data.get('val_fraction', '?')}, split seed {data.get('seed', '?')})",
        f"- recipe: {recipe.get('optimizer', '?')} lr {recipe.get('lr', '?')}, batch {recipe.get('batch_size', '?')}, "
        f"weight decay {recipe.get('weight_decay', '?')}, warmup {recipe.get('warmup_epochs', '?')} epochs, "
        f"label smoothing {recipe.get('label_smoothing', '?')}, seed {recipe.get('seed', '?')}",
        f"- search: {search.get('algorithm', '?')}, {search.get('num_samples', '?')} samples; MLflow run "
        f"`{trial.run_id}` (sweep run `{sweep.parent_run_id}`) in `{sweep.tracking_uri}`",
        "",
        "## Files",
        "",
    ]
    lines += [f"- `{name}`: {what}" for name, what in files.items()]
    if checks:
        lines += ["", "Checked at export: " + "; ".join(
            f"{name} max abs logit difference to PyTorch {diff:.2g}" for name, diff in checks.items()) + "."]
    lines += [
        "",
        "## Load it",
        "",
        "From the folder that holds this one:",
        "",
        "```python",
        "import mfsearch",
        f'model = mfsearch.create_model("{folder}/arch.yaml", pretrained="{folder}/weights.safetensors").eval()',
        "```",
    ]
    if "model.onnx" in files:
        size = sweep.img_size or 224
        lines += [
            "",
            "```python",
            "import numpy as np, onnxruntime as ort",
            f'session = ort.InferenceSession("{folder}/model.onnx")',
            f'logits = session.run(None, {{"images": np.zeros((1, 3, {size}, {size}), np.float32)}})[0]',
            "```",
        ]
    if "model.ts" in files:
        lines += ["", "```python", "import torch", f'model = torch.jit.load("{folder}/model.ts")', "```"]
    lines += ["", "Inputs are RGB images scaled to [0, 1] and normalised with the dataset's mean and std "
                  "(mfsearch's data pipeline does this).", ""]
    return "\n".join(lines)
