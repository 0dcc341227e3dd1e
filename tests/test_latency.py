"""The latency protocol (mfsearch.latency): what it measures, how it reports, what it leaves behind."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import mfsearch
from mfsearch.latency import (LatencyMeasurement, LatencyProtocol, host_description, measure_arch,
                              measure_latency)
from mfsearch.presets import family_arch

FAST = LatencyProtocol(warmup=2, warmup_s=0.0, rounds=3, repeats=5)
STEM = {"kernel_size": 3, "stride": 2, "padding": 1}


class Recorder(torch.nn.Module):
    """Records, per forward, the threads torch uses, its mode, grad state and the input's shape."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.calls: list[tuple[int, bool, bool, tuple]] = []

    def forward(self, x):
        self.calls.append((torch.get_num_threads(), self.training, torch.is_grad_enabled(), tuple(x.shape)))
        return x


def test_protocol_params_round_trip():
    protocol = LatencyProtocol(threads=2, batch=3, warmup=4, warmup_s=0.5, rounds=2, repeats=7)
    params = protocol.to_params()
    assert all(isinstance(k, str) and k.startswith("latency.") and isinstance(v, str) for k, v in params.items())
    assert params["latency.threads"] == "2" and params["latency.batch"] == "3"
    assert params["latency.statistic"] == "median" and params["latency.spread"] == "iqr"
    assert LatencyProtocol.from_params(params) == protocol
    assert LatencyProtocol.from_params(LatencyProtocol().to_params()) == LatencyProtocol()
    m = LatencyMeasurement.from_samples([1.0, 2.0], protocol)
    logged = m.to_params()
    assert logged["latency.host"] == host_description() and LatencyProtocol.from_params(logged) == protocol
    with pytest.raises(ValueError, match="version"):
        LatencyProtocol.from_params({**params, "latency.version": "0"})


def test_defaults_are_one_thread_batch_one():
    p = LatencyProtocol()
    assert (p.threads, p.batch) == (1, 1) and p.warmup > 0 and p.warmup_s > 0 and p.rounds * p.repeats >= 50


@pytest.mark.parametrize("field, value", [("threads", 0), ("batch", 0), ("rounds", 0), ("repeats", 0),
                                          ("warmup", -1), ("warmup_s", -0.1)])
def test_invalid_protocol(field, value):
    with pytest.raises(ValueError, match=field):
        LatencyProtocol(**{field: value})


def test_protocol_applied_and_state_restored():
    model = Recorder().train()
    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    torch.set_num_threads(target)
    try:
        protocol = dataclasses.replace(FAST, threads=1, batch=2)
        m = measure_latency(model, img_size=8, in_chans=5, protocol=protocol)
        assert torch.get_num_threads() == target          # restored
        assert model.training                               # train mode restored
        assert torch.is_grad_enabled()
        assert len(m.samples_ms) == protocol.rounds * protocol.repeats
        assert len(model.calls) >= protocol.warmup + protocol.rounds * protocol.repeats
        assert set(model.calls) == {(1, False, False, (2, 5, 8, 8))}   # 1 thread, eval, no grad, the input
    finally:
        torch.set_num_threads(before)


def test_threads_restored_after_an_error():
    class Boom(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(Boom(), img_size=4, protocol=dataclasses.replace(FAST, threads=before + 1))
    assert torch.get_num_threads() == before


def test_statistics():
    m = LatencyMeasurement.from_samples([5.0, 1.0, 4.0, 2.0, 3.0], LatencyProtocol(rounds=1, repeats=5))
    assert (m.median_ms, m.p25_ms, m.p75_ms, m.spread_ms) == (3.0, 2.0, 4.0, 2.0)
    assert m.agrees_with(LatencyMeasurement.from_samples([4.0, 5.0, 6.0], FAST))     # |3 - 5| <= 2
    assert not m.agrees_with(LatencyMeasurement.from_samples([6.0, 6.0, 6.0], FAST))  # |3 - 6| > 2
    one = LatencyMeasurement.from_samples([2.5], FAST)
    assert (one.median_ms, one.spread_ms) == (2.5, 0.0)


def tiny_arch(family: str, depths, dims, img_size: int):
    return mfsearch.parse_arch(family_arch(family, depths, dims, img_size=img_size, num_classes=10, stem=STEM))


def test_measured_model_statistics_and_rng_untouched():
    cfg = tiny_arch("identityformer", [1, 1, 1, 1], [16, 32, 64, 128], 32)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    m = measure_latency(cfg, protocol=FAST)   # an ArchConfig: built from a fixed seed, at its img_size
    assert torch.equal(torch.rand(3), expected)   # the caller's RNG stream is left alone
    s = m.samples_ms
    assert len(s) == FAST.rounds * FAST.repeats and all(t > 0 for t in s)
    assert min(s) <= m.p25_ms <= m.median_ms <= m.p75_ms <= max(s)
    assert m.spread_ms == pytest.approx(m.p75_ms - m.p25_ms) and m.spread_ms >= 0
    assert len(m.round_medians_ms) == FAST.rounds
    assert m.protocol == FAST and "torch" in m.host


def test_bigger_model_measures_slower():
    small = tiny_arch("identityformer", [1, 1, 1, 1], [16, 32, 64, 128], 32)
    big = tiny_arch("convformer", [2, 2, 4, 2], [64, 128, 256, 320], 64)
    small_macs, big_macs = mfsearch.count_cost(small).macs, mfsearch.count_cost(big).macs
    assert big_macs >= 20 * small_macs
    protocol = LatencyProtocol(warmup=3, warmup_s=0.1, rounds=3, repeats=7)
    fast, slow = measure_arch(small, protocol), measure_arch(big, protocol)
    assert slow.median_ms > 3 * fast.median_ms, (fast, slow)


def test_arch_measured_at_another_img_size():
    cfg = tiny_arch("randformer", [1, 1, 1, 1], [16, 32, 64, 128], 32)   # RandomMixer: N fixed by img_size
    m = measure_latency(cfg, img_size=48, protocol=FAST)
    assert len(m.samples_ms) == FAST.rounds * FAST.repeats and m.median_ms > 0
