"""Dominance, fronts and hypervolume on hand-checked cases (pure functions; no MLflow, no training).

Points are (val/acc1 %, cost): accuracy up, cost down.
"""
from __future__ import annotations

import pytest

from mfsearch.analysis.fronts import COST_AXES, build_front
from mfsearch.analysis.sweep_data import StageSummary, TrialRecord
from mfsearch.pareto import (dominated_among, dominates, highest_fidelity, hypervolume, normalized_hypervolume,
                             pareto_indices)

UP_DOWN = (True, False)
MACS = COST_AXES[0]


def trial(name: str, acc: float, macs: float, family: str = "searched", epochs: int = 4,
          params: float = 1e6) -> TrialRecord:
    return TrialRecord(run_id=f"run-{name}", trial_id=name, family=family, status="completed", epochs=epochs,
                       metrics={"val/acc1": acc, "cost/macs": macs, "cost/params": params, "epochs_reached": epochs},
                       stages=(StageSummary("pooling", 2, 64),), params={})


@pytest.mark.parametrize("a, b, expected", [
    ((80, 10), (70, 20), True),    # better in both
    ((80, 10), (80, 20), True),    # tie in accuracy, cheaper
    ((80, 10), (70, 10), True),    # tie in cost, more accurate
    ((80, 10), (80, 10), False),   # identical: neither dominates
    ((80, 20), (70, 10), False),   # a trade-off
    ((70, 20), (80, 10), False),   # worse in both
])
def test_dominates(a, b, expected):
    assert dominates(a, b, UP_DOWN) is expected


def test_front_keeps_duplicates_and_drops_ties_that_lose():
    points = [(80, 10), (80, 10), (70, 5), (60, 20), (80, 12), (90, 30)]
    # (60, 20) is beaten by (80, 10); (80, 12) ties (80, 10) on accuracy and costs more: dominated.
    assert pareto_indices(points, UP_DOWN) == [0, 1, 2, 5]
    assert dominated_among((80, 10), points, UP_DOWN) == [3, 4]   # never the duplicate itself


def test_hypervolume_hand_computed():
    ref = (0, 30)
    # Union of [0,80] x [10,30] and [0,90] x [20,30]: 80*20 + 90*10 - 80*10 = 1700.
    assert hypervolume([(80, 10), (90, 20)], UP_DOWN, ref) == pytest.approx(1700)
    # A dominated point, a duplicate and a point beyond the reference cost add nothing.
    assert hypervolume([(80, 10), (90, 20), (70, 25), (80, 10), (99, 35)], UP_DOWN, ref) == pytest.approx(1700)
    assert hypervolume([(50, 10)], UP_DOWN, ref) == pytest.approx(1000)
    assert hypervolume([], UP_DOWN, ref) == 0.0
    # Share of the box from the reference to the ideal (100 %, cost 0): 1700 / (100 * 30).
    assert normalized_hypervolume([(80, 10), (90, 20)], UP_DOWN, ref, (100, 0)) == pytest.approx(1700 / 3000)


def test_hypervolume_checks_the_reference_length():
    with pytest.raises(ValueError):
        hypervolume([(80, 10)], UP_DOWN, (0,))


def test_highest_fidelity():
    assert highest_fidelity([3, 1, 3, 2]) == (3, [0, 2])
    assert highest_fidelity([]) == (None, [])


def test_front_compares_only_the_highest_fidelity():
    trials = [
        trial("a", 80, 10e6),
        trial("b", 90, 20e6),
        trial("stopped", 95, 1e6, epochs=1),        # would dominate everything, but trained 1 epoch of 4
        trial("base", 70, 15e6, family="caformer"),
        trial("base2", 85, 25e6, family="convformer"),
    ]
    front = build_front(trials, MACS)
    assert front.fidelity == 4
    assert [t.trial_id for t in front.lower_fidelity] == ["stopped"]
    assert "stopped" not in [t.trial_id for t in front.compared]
    assert [m.trial.trial_id for m in front.members] == ["a", "b"]              # sorted by cost
    assert [b.trial_id for b in front.members[0].dominates] == ["base"]         # (80, 10) beats (70, 15)
    assert [b.trial_id for b in front.members[1].dominates] == ["base2"]        # (90, 20) beats (85, 25)
    # Reference: accuracy 0, 1.1 x the largest compared cost (25e6; the stopped trial does not count).
    assert front.reference == (0.0, pytest.approx(27.5e6))
    box = 100 * 27.5e6
    # All: boxes [0,80]x[10,27.5] and [0,90]x[20,27.5] (M): 80*17.5 + 90*7.5 - 80*7.5 = 1475.
    assert front.hypervolume == pytest.approx(1475e6 / box)
    # Baselines alone: [0,70]x[15,27.5] and [0,85]x[25,27.5]: 70*12.5 + 85*2.5 - 70*2.5 = 912.5.
    assert front.hypervolume_baselines == pytest.approx(912.5e6 / box)
    assert [t.trial_id for t in front.baseline_front] == ["base", "base2"]


def test_front_ties_and_duplicates_with_baselines():
    trials = [trial("twin1", 80, 10e6), trial("twin2", 80, 10e6),
              trial("base", 80, 10e6, family="identityformer"), trial("pricier", 80, 12e6, family="randformer")]
    front = build_front(trials, MACS)
    # Three identical points are all on the front; none dominates an equal baseline (a tie) ...
    assert sorted(m.trial.trial_id for m in front.members) == ["base", "twin1", "twin2"]
    for m in front.members:
        assert [b.trial_id for b in m.dominates] == ["pricier"]   # ... but each beats the pricier one
    # Duplicates add no volume: all trials and the baselines alone cover the same box.
    assert front.hypervolume == pytest.approx(front.hypervolume_baselines)


def test_no_latency_front_when_a_trial_lacks_it():
    latency = COST_AXES[2]
    assert build_front([trial("a", 80, 10e6)], latency) is None


def _sweep(trials, dataset: str, num_classes: int, img_size: int):
    from mfsearch.analysis.sweep_data import Sweep
    return Sweep("demo", "1", "parent", "sqlite:///unused.db",
                 {"num_classes": num_classes, "img_size": img_size, "data": {"dataset": dataset}}, tuple(trials))


def test_published_points_only_on_imagenet_1k_at_224():
    from mfsearch.analysis.fronts import published_reference
    trials = [trial("a", 80, 2e9)]
    rows = published_reference(_sweep(trials, "imagefolder", 1000, 224))
    assert len(rows) == 23 and {r.resolution for r in rows} == {224} and {r.pretrain for r in rows} == {"in1k"}
    assert published_reference(_sweep(trials, "cifar10", 10, 32)) == []
    assert published_reference(_sweep(trials, "imagefolder", 1000, 384)) == []
    assert published_reference(_sweep(trials, "imagefolder", 100, 224)) == []


def test_plots_draw_fronts_baselines_stopped_trials_and_published_points(tmp_path):
    from PIL import Image

    from mfsearch.analysis.fronts import pareto_report
    from mfsearch.analysis.plots import log_ticks, use_log_x, write_html, write_png
    trials = [trial("a", 76.0, 1.5e9, params=10e6), trial("b", 81.0, 4.0e9, params=25e6),
              trial("c", 79.0, 9.0e9, params=50e6), trial("early", 70.0, 2.0e9, epochs=1),
              trial("pool", 78.0, 1.8e9, family="poolformerv2", params=11.9e6),
              trial("ca", 83.6, 4.1e9, family="caformer", epochs=1, params=26e6)]
    report = pareto_report(_sweep(trials, "imagefolder", 1000, 224))
    assert [f.axis.key for f in report.fronts] == ["macs", "params"]   # no latency measured
    png, page = write_png(report, tmp_path / "p.png"), write_html(report, tmp_path / "p.html")
    assert Image.open(png).width > 1000
    text = page.read_text()
    for part in ("caformer (paper, ImageNet-1K)", "caformer (1 ep)", "poolformerv2", "Pareto front",
                 "stage 0: pooling x2 @64"):
        assert part in text, part
    assert use_log_x([1.5, 9.0]) and not use_log_x([4.5, 7.2])
    assert log_ticks(3.0, 41.0) == [5.0, 10.0, 20.0, 50.0]
