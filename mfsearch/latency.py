"""Host latency under one protocol, so that numbers from different trials, sweeps and processes compare.

The protocol (``LatencyProtocol``; every field is logged as a ``latency.<field>`` param):

- the model in eval mode, under ``torch.inference_mode()`` (no grad), float32, weights and input
  from a fixed seed; the input is ``batch`` x ``in_chans`` x ``img_size`` x ``img_size`` (the
  architecture's own ``img_size``);
- ``threads`` torch intra-op threads (default 1), restored afterwards;
- warm-up: untimed forwards until at least ``warmup`` of them *and* ``warmup_s`` seconds are done
  (oneDNN primitive caches, the allocator, the CPU clock ramp-up);
- then ``rounds`` rounds of ``repeats`` forwards, each forward timed on its own with
  ``time.perf_counter_ns``; Python's garbage collector is off while timing (only its young
  generation is collected, between rounds). The medians of the rounds (``round_medians_ms``) show
  whether the machine drifted during the measurement;
- reported: the median of all per-forward times and, as the spread, their interquartile range
  (p75 - p25). The IQR rather than the median absolute deviation because it comes with the two
  quartiles, which tell a skewed (contended) distribution from a symmetric one.

Why 1 thread by default: on a shared host the cores a measurement gets depend on what else runs
(other trials, a training, a browser). A 1-thread forward needs only one free core and never waits
on a descheduled worker thread at an intra-op barrier, so it depends least on the other tenants and
on the host's core count: it is the setting that compares between measurements (no setting makes
a fully loaded machine quiet: the sweep measures after its trainings). It is also what the small
32-px architectures of a sweep run best at: their ops are too small for intra-op parallelism to pay.
Measure deployment settings (more threads, a larger batch) with another ``LatencyProtocol``; its
params say so.

    from mfsearch.latency import LatencyProtocol, measure_arch
    m = measure_arch(mfsearch.resolve_arch("identityformer_s12", img_size=32))
    print(f"{m.median_ms:.3f} ms (IQR {m.spread_ms:.3f})", m.to_params())
"""
from __future__ import annotations

import dataclasses
import gc
import os
import platform
import statistics
import time
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .config import ArchConfig

PROTOCOL_VERSION = "1"   # bump when the procedure changes in a way the fields below do not show


@dataclasses.dataclass(frozen=True)
class LatencyProtocol:
    threads: int = 1        # torch intra-op threads (see the module docstring for why 1)
    batch: int = 1
    warmup: int = 10        # untimed forwards, at least ...
    warmup_s: float = 0.25  # ... and at least this many seconds of them
    rounds: int = 5
    repeats: int = 20       # timed forwards per round: rounds x repeats samples in all

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            low = 0 if f.name.startswith("warmup") else 1
            if getattr(self, f.name) < low:
                raise ValueError(f"LatencyProtocol.{f.name} must be >= {low}, got {getattr(self, f.name)}")

    def to_params(self) -> dict[str, str]:
        """``latency.<field>`` -> value, plus the statistic, the spread and the version: MLflow params."""
        params = {f"latency.{f.name}": str(getattr(self, f.name)) for f in dataclasses.fields(self)}
        params.update({"latency.statistic": "median", "latency.spread": "iqr", "latency.version": PROTOCOL_VERSION})
        return params

    @classmethod
    def from_params(cls, params: dict[str, str]) -> LatencyProtocol:
        """The protocol ``to_params`` wrote (extra keys such as ``latency.host`` are ignored)."""
        if params.get("latency.version", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            raise ValueError(f"latency protocol version {params['latency.version']!r}, this is {PROTOCOL_VERSION!r}")
        return cls(**{f.name: type(f.default)(params[f"latency.{f.name}"])
                      for f in dataclasses.fields(cls) if f"latency.{f.name}" in params})


@dataclasses.dataclass(frozen=True)
class LatencyMeasurement:
    median_ms: float
    spread_ms: float                 # IQR: p75_ms - p25_ms of the per-forward times
    p25_ms: float
    p75_ms: float
    samples_ms: tuple[float, ...]    # every timed forward, in order (rounds x repeats)
    protocol: LatencyProtocol
    host: str

    @classmethod
    def from_samples(cls, samples_ms: list[float], protocol: LatencyProtocol, host: str | None = None
                     ) -> LatencyMeasurement:
        p25, median, p75 = statistics.quantiles(samples_ms, n=4, method="inclusive") if len(samples_ms) > 1 \
            else (samples_ms[0],) * 3
        return cls(median, p75 - p25, p25, p75, tuple(samples_ms), protocol, host or host_description())

    @property
    def round_medians_ms(self) -> list[float]:
        n = self.protocol.repeats
        return [statistics.median(self.samples_ms[i:i + n]) for i in range(0, len(self.samples_ms), n)]

    def agrees_with(self, other: LatencyMeasurement) -> bool:
        """The medians differ by no more than the larger of the two reported spreads."""
        return abs(self.median_ms - other.median_ms) <= max(self.spread_ms, other.spread_ms)

    def to_params(self) -> dict[str, str]:
        """The protocol's params plus ``latency.host``."""
        return {**self.protocol.to_params(), "latency.host": self.host}

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (IQR {self.spread_ms:.3f} ms)"


def host_description() -> str:
    """CPU model, logical CPU count and torch version, e.g. ``AMD EPYC 7B13; 2 CPUs; torch 2.5.1``."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine() or "unknown CPU"
    return f"{cpu}; {os.cpu_count()} CPUs; torch {torch.__version__}"


def measure_latency(model_or_cfg: torch.nn.Module | ArchConfig, img_size: int | None = None,
                    in_chans: int | None = None, protocol: LatencyProtocol = LatencyProtocol(),
                    seed: int = 0) -> LatencyMeasurement:
    """Latency of one forward of ``model_or_cfg`` under ``protocol``.

    An ``ArchConfig`` is built with weights from ``seed`` (see ``measure_arch``); a module is
    measured as it is (put back in its train/eval mode afterwards) and needs ``img_size``.
    """
    if not isinstance(model_or_cfg, torch.nn.Module):
        return measure_arch(model_or_cfg, protocol, seed=seed, img_size=img_size)
    if img_size is None:
        raise ValueError("measure_latency(module, ...) needs img_size")
    model, was_training, threads = model_or_cfg, model_or_cfg.training, torch.get_num_threads()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(protocol.batch, 3 if in_chans is None else in_chans, img_size, img_size, generator=gen)
    gc_was_enabled = gc.isenabled()
    try:
        torch.set_num_threads(protocol.threads)
        model.eval()
        with torch.inference_mode():
            start, done = time.perf_counter(), 0
            while done < protocol.warmup or time.perf_counter() - start < protocol.warmup_s:
                model(x)
                done += 1
            samples_ns = []
            gc.disable()
            for _ in range(protocol.rounds):
                gc.collect(0)   # the young generation only (microseconds; a full collection takes ~0.2 s)
                for _ in range(protocol.repeats):
                    t0 = time.perf_counter_ns()
                    model(x)
                    samples_ns.append(time.perf_counter_ns() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
        model.train(was_training)
        torch.set_num_threads(threads)
    return LatencyMeasurement.from_samples([t / 1e6 for t in samples_ns], protocol)


def measure_arch(cfg: ArchConfig, protocol: LatencyProtocol = LatencyProtocol(), seed: int = 0,
                 img_size: int | None = None) -> LatencyMeasurement:
    """Build ``MetaFormer(cfg)`` with weights from ``seed`` (the caller's RNG state is left alone)
    and measure it at ``img_size`` (default: the config's) under ``protocol``."""
    from .model import MetaFormer

    if img_size and img_size != cfg.img_size:   # the model is built for its input size (RandomMixer's N)
        cfg = dataclasses.replace(cfg, img_size=img_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MetaFormer(cfg)
    return measure_latency(model, cfg.img_size, cfg.in_chans, protocol, seed=seed)
