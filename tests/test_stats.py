"""The statistics behind verdicts, checked against values worked out by hand (t quantiles from tables)."""
from __future__ import annotations

import json
import math

import pytest

from mfsearch.analysis.confirmation import (ConfirmedArch, ConfirmReport, build_claims, interval_metrics,
                                            rank_agreement)
from mfsearch.analysis.stats import kendall_tau, mean_interval, paired_comparison, spearman_rho

T_975_DF2 = 4.302653   # Student t, 97.5 % quantile, 2 degrees of freedom
T_975_DF4 = 2.776445


def test_mean_interval_by_hand():
    i = mean_interval([1.0, 2.0, 3.0])
    assert i.mean == 2.0 and i.sd == pytest.approx(1.0) and i.n == 3
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    assert (i.low, i.high) == pytest.approx((2 - half, 2 + half))
    j = mean_interval([10.0, 12.0, 11.0, 13.0, 14.0])
    assert j.half_width == pytest.approx(T_975_DF4 * math.sqrt(2.5) / math.sqrt(5))
    one = mean_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.low) and one.text() == "5.00 (1 seed)"
    with pytest.raises(ValueError):
        mean_interval([])


def test_paired_comparison_verdicts():
    # differences 2, 2, 1.5: mean 1.833, sd 0.2887, interval 1.833 +- 0.717 -> above 0
    c = paired_comparison([3.0, 4.0, 5.0], [1.0, 2.0, 3.5])
    assert c.verdict == "confirmed"
    assert c.difference.mean == pytest.approx(11 / 6)
    assert c.difference.low == pytest.approx(11 / 6 - T_975_DF2 * math.sqrt(1 / 12) / math.sqrt(3))
    assert c.p_value == pytest.approx(0.00816, abs=2e-4)         # t = 11.0 on 2 df
    assert paired_comparison([1.0, 2.0, 3.5], [3.0, 4.0, 5.0]).verdict == "refuted"
    # differences 1, -1, 0.5: the interval holds 0
    u = paired_comparison([2.0, 1.0, 3.5], [1.0, 2.0, 3.0])
    assert u.verdict == "unconfirmed" and u.difference.low < 0 < u.difference.high
    # Pairing matters: the seeds move both architectures together, the differences stay put.
    a, b = [30.0, 40.0, 50.0], [29.0, 39.2, 48.9]
    assert paired_comparison(a, b).verdict == "confirmed"
    assert mean_interval(b).high > mean_interval(a).low              # the unpaired intervals overlap
    assert paired_comparison([2.0, 2.0], [1.0, 1.0]).p_value == 0.0  # constant difference
    assert paired_comparison([2.0], [1.0]).verdict == "unconfirmed"  # one seed decides nothing
    with pytest.raises(ValueError):
        paired_comparison([1.0], [1.0, 2.0])


def test_rank_correlations_by_hand():
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)   # 2 concordant, 1 discordant pair
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman_rho([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(kendall_tau([1], [2]))


def arch(key, family, macs, val, sweep_acc=None):
    return ConfirmedArch(key, key, family, f"run-{key}", "", macs, 1e6, sweep_acc, 4, dict(enumerate(val, 1)), {},
                         f"confirm-{key}")


def test_claims_cover_every_cheaper_searched_baseline_pair():
    archs = [arch("s1", "searched", 10e6, [50, 52, 51], 40), arch("s2", "searched", 30e6, [40, 41, 39], 41),
             arch("conv", "convformer", 20e6, [45, 46, 44], 39), arch("id", "identityformer", 10e6, [49, 50, 52], 38)]
    claims = build_claims(archs, claimed={("s1", "conv"), ("id", "conv")})
    # s2 costs more than both baselines; id over conv is judged because the sweep claimed it.
    assert {(c.arch, c.baseline) for c in claims} == {("s1", "conv"), ("s1", "id"), ("id", "conv")}
    by = {(c.arch, c.baseline): c for c in claims}
    assert by["s1", "conv"].claimed_by_sweep and by["s1", "conv"].verdict == "confirmed"
    assert not by["s1", "id"].claimed_by_sweep and by["s1", "id"].verdict == "unconfirmed"
    tau, ranked = rank_agreement(archs)
    # sweep order s2 > s1 > conv > id; confirmed order s1 > id > conv > s2
    assert ranked == ("s1", "s2", "conv", "id")
    assert tau == pytest.approx(kendall_tau([40, 41, 39, 38], [51, 40, 45, 50 + 1 / 3]))
    m = interval_metrics(archs[0])
    assert m["confirm/val_acc1_mean"] == pytest.approx(51.0) and m["confirm/seeds"] == 3
    assert m["confirm/val_acc1_ci_low"] < 51 < m["confirm/val_acc1_ci_high"] and m["sweep/val_acc1"] == 40


def test_report_round_trips_through_json():
    archs = (arch("s1", "searched", 10e6, [50, 52, 51], 40), arch("conv", "convformer", 20e6, [45, 46, 44], 39))
    claims = build_claims(archs, {("s1", "conv")})
    tau, ranked = rank_agreement(archs)
    report = ConfirmReport("sw", "sweeprun", "confirmrun", (1, 2, 3), 8, 8000, 4, archs, claims, tau, ranked, 12.5)
    back = ConfirmReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back.to_dict() == report.to_dict()
    assert back.counts() == {"confirmed": 1, "refuted": 0, "unconfirmed": 0}
    assert back.by_source("run-s1").key == "s1"
