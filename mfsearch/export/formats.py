"""Deployable forms of a trained model - ONNX and TorchScript - each checked against PyTorch.

Both are made from the eval-mode model under ``torch.no_grad()``: mfsearch's StarReLU takes a custom
autograd Function only when gradients are on, and dropout / drop path must be off. ONNX goes through
the dynamo exporter (``torch.export`` + onnxscript), the one PyTorch maintains; the batch dimension
stays dynamic. The check runs a fresh random batch of another size through onnxruntime (CPU) and
compares with the PyTorch logits: a model that does not match is an error, never a file.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import MfsearchError

FORMATS = ("onnx", "torchscript")
ONNX_TOLERANCE = 1e-4        # max abs logit difference, onnxruntime vs PyTorch
ONNX_OPSET = 18
CHECK_BATCH = 3              # differs from the export batch: proves the batch axis is dynamic
EXPORT_BATCH = 2


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"onnx,torchscript"`` -> ("onnx", "torchscript"); unknown names are a ``ConfigError``."""
    from ..errors import ConfigError
    names = tuple(dict.fromkeys(n.strip().lower() for n in (text or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ConfigError("--format", f"{', '.join(map(repr, unknown))} is not one of {', '.join(FORMATS)}")
    return names


def example_input(img_size: int, batch: int, seed: int = 0) -> torch.Tensor:
    """Normalised-image-like input: standard normal, seeded so a check can be repeated."""
    return torch.randn(batch, 3, img_size, img_size, generator=torch.Generator().manual_seed(seed))


def export_onnx(model: nn.Module, img_size: int, path: Path) -> float:
    """Write ``path`` (input ``images`` [N,3,H,W] -> ``logits`` [N,classes]); returns the max abs
    difference to PyTorch measured with onnxruntime (raises when above ``ONNX_TOLERANCE``)."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad(), _quiet():
        program = torch.onnx.export(model, (example_input(img_size, EXPORT_BATCH),), dynamo=True,
                                    input_names=["images"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET, verbose=False)
        program.save(str(path))
    diff = check_onnx(model, path, img_size)
    if not diff <= ONNX_TOLERANCE:
        raise MfsearchError(f"{path.name}: onnxruntime logits differ from PyTorch by {diff:.3g} "
                            f"(> {ONNX_TOLERANCE:g}); not exported")
    return diff


def check_onnx(model: nn.Module, path: Path, img_size: int, inputs: torch.Tensor | None = None) -> float:
    """Max abs difference between onnxruntime on ``path`` and ``model`` (eval) on ``inputs``."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    x = example_input(img_size, CHECK_BATCH, seed=1) if inputs is None else inputs
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model.eval()(x).numpy()
    return float(np.abs(got - want).max())


def export_torchscript(model: nn.Module, img_size: int, path: Path) -> float:
    """A traced TorchScript module (``torch.jit.load(path)``); returns its max abs difference to the
    eager model. Traced, not scripted: the model's Python (registries, dataclass configs) is not
    TorchScript, and the forward has no data-dependent control flow for tracing to miss."""
    model = model.eval()
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(model, example_input(img_size, EXPORT_BATCH))
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))
        x = example_input(img_size, CHECK_BATCH, seed=1)
        diff = float((loaded(x) - model(x)).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise MfsearchError(f"{path.name}: TorchScript logits differ from PyTorch by {diff:.3g}; not exported")
    return diff


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and tracer warnings meant for PyTorch developers."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
