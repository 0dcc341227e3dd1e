"""MO-ASHA: Pareto ranking and promotion decisions checked by hand, then the Ray scheduler's rungs."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from mfsearch.search.mo_asha import MOASHAScheduler, is_baseline_trial, rung_milestones
from mfsearch.search.pareto_rank import crowding_distances, nondominated_fronts, pareto_order, promoted

UP_DOWN = (True, False)          # accuracy up, MACs down
CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


def trial(tid: str, family: str = "searched"):
    return SimpleNamespace(trial_id=tid, config={"candidate": {"family": family}})


def result(epoch: int, acc: float, macs: float) -> dict:
    return {"epochs_reached": epoch, "val/acc1": acc, "cost/macs": macs}


# ---- pure ranking -------------------------------------------------------------------------------

def test_nondominated_fronts_by_hand():
    points = [(50, 20), (45, 18), (30, 5), (40, 25), (29, 6)]
    # (40,25) is dominated by (50,20) and (45,18); (29,6) by (30,5) only.
    assert nondominated_fronts(points, UP_DOWN) == [[0, 1, 2], [3, 4]]


def test_crowding_distance_by_hand():
    points = [(50.0, 20.0), (45.0, 18.0), (30.0, 5.0), (40.0, 10.0)]
    d = crowding_distances(points, [0, 1, 2, 3])
    assert d[0] == math.inf and d[2] == math.inf          # the ends of both objectives
    # acc range 20, MACs range 15. (45,18): neighbours on acc 40..50 -> 10/20; on MACs 10..20 -> 10/15
    assert d[1] == pytest.approx(10 / 20 + 10 / 15)
    # (40,10): on acc 30..45 -> 15/20; on MACs 5..18 -> 13/15
    assert d[3] == pytest.approx(15 / 20 + 13 / 15)
    assert pareto_order(points, UP_DOWN) == [0, 2, 3, 1]


def test_ties_keep_arrival_order():
    points = [(40.0, 10.0), (40.0, 10.0), (40.0, 10.0)]     # duplicates: one front, equal distance
    assert pareto_order(points, UP_DOWN) == [0, 1, 2]
    assert promoted(points, UP_DOWN, 2) == [0, 1]           # ceil(3/2) = 2, the first two to arrive


def test_nan_counts_as_worst():
    points = [(float("nan"), 1.0), (10.0, 5.0)]
    assert pareto_order(points, UP_DOWN) == [1, 0]


def test_single_objective_is_asha_top_n_over_eta():
    accs = [(v,) for v in (30.0, 50.0, 40.0, 20.0)]
    assert promoted(accs, (True,), 2) == [1, 2]             # top ceil(4/2)
    assert promoted(accs, (True,), 3) == [1, 2]             # top ceil(4/3) = 2
    assert promoted(accs[:1], (True,), 4) == [0]            # the first at a rung always goes on


# ---- the scheduler ------------------------------------------------------------------------------

def test_rung_milestones():
    assert rung_milestones(2, 2, 4) == [2]
    assert rung_milestones(1, 2, 8) == [1, 2, 4]
    assert rung_milestones(1, 3, 27) == [1, 3, 9]
    assert rung_milestones(5, 2, 4) == []


def mo_asha(max_t=8, grace=2, eta=2, objectives=(("val/acc1", "max"), ("cost/macs", "min"))):
    return MOASHAScheduler(objectives, max_t=max_t, grace_period=grace, reduction_factor=eta,
                           protect=is_baseline_trial)


def test_cheap_less_accurate_trial_asha_stops_and_mo_asha_keeps():
    single = mo_asha(objectives=(("val/acc1", "max"),))
    multi = mo_asha()
    assert single.on_trial_result(None, trial("a"), result(2, 50.0, 20e6)) == CONTINUE
    assert single.on_trial_result(None, trial("b"), result(2, 45.0, 18e6)) == STOP   # ceil(2/2) = 1 goes on
    assert multi.on_trial_result(None, trial("a"), result(2, 50.0, 20e6)) == CONTINUE
    # Both on the front, both ends of it (infinite crowding distance): the tie goes to arrival order.
    assert multi.on_trial_result(None, trial("b"), result(2, 45.0, 18e6)) == STOP
    # c is the least accurate of three: accuracy-only ASHA keeps ceil(3/2) = 2 (a, b) and stops c.
    assert single.on_trial_result(None, trial("c"), result(2, 30.0, 5e6)) == STOP
    # By Pareto rank all three are non-dominated; the ends (a: most accurate, c: cheapest) have
    # infinite crowding distance, so MO-ASHA keeps a and c.
    assert multi.on_trial_result(None, trial("c"), result(2, 30.0, 5e6)) == CONTINUE


def test_dominated_trial_is_stopped_and_decisions_are_recorded():
    s = mo_asha()
    assert s.on_trial_result(None, trial("a"), result(2, 50.0, 10e6)) == CONTINUE
    assert s.on_trial_result(None, trial("b"), result(2, 40.0, 12e6)) == STOP     # dominated by a
    assert s.on_trial_result(None, trial("c"), result(2, 60.0, 30e6)) == CONTINUE  # front: a, c
    # d is dominated by a: second front, behind a and c, and ceil(4/2) = 2 go on.
    assert s.on_trial_result(None, trial("d"), result(2, 45.0, 11e6)) == STOP
    assert [(t, a) for t, _, a in s.decisions] == [("a", CONTINUE), ("b", STOP), ("c", CONTINUE), ("d", STOP)]
    assert s.num_stopped == 2


def test_baselines_are_recorded_but_never_stopped():
    s = mo_asha()
    s.on_trial_result(None, trial("a"), result(2, 60.0, 5e6))
    # The baseline is dominated by a; it is recorded yet goes on to full fidelity.
    assert s.on_trial_result(None, trial("base", "poolformerv2"), result(2, 30.0, 15e6)) == CONTINUE
    assert "base" in s.rungs[2]
    # Its record sets the bar: a searched trial dominated by both is stopped.
    assert s.on_trial_result(None, trial("x"), result(2, 20.0, 20e6)) == STOP


def test_each_rung_judges_once_and_max_t_stops():
    s = mo_asha(max_t=8, grace=2)          # rungs at 2 and 4
    assert s.on_trial_result(None, trial("a"), result(1, 10.0, 1e6)) == CONTINUE   # below the first rung
    assert s.on_trial_result(None, trial("a"), result(2, 10.0, 1e6)) == CONTINUE
    assert s.on_trial_result(None, trial("a"), result(3, 10.0, 1e6)) == CONTINUE   # already judged at 2
    assert s.on_trial_result(None, trial("a"), result(4, 12.0, 1e6)) == CONTINUE
    assert list(s.rungs[2]) == ["a"] and list(s.rungs[4]) == ["a"]
    assert s.on_trial_result(None, trial("a"), result(8, 20.0, 1e6)) == STOP
    assert len(s.decisions) == 2


def test_missing_objective_is_not_judged():
    s = mo_asha()
    assert s.on_trial_result(None, trial("a"), {"epochs_reached": 2, "val/acc1": 10.0}) == CONTINUE
    assert s.rungs[2] == {}


def test_save_restore_round_trip(tmp_path):
    s = mo_asha()
    s.on_trial_result(None, trial("a"), result(2, 50.0, 10e6))
    s.save(str(tmp_path / "sched.pkl"))
    t = mo_asha()
    t.restore(str(tmp_path / "sched.pkl"))
    assert t.rungs == s.rungs
    assert t.on_trial_result(None, trial("b"), result(2, 40.0, 12e6)) == STOP


def test_bad_arguments():
    with pytest.raises(ValueError):
        MOASHAScheduler([("val/acc1", "up")], max_t=4)
    with pytest.raises(ValueError):
        MOASHAScheduler([], max_t=4)
    with pytest.raises(ValueError):
        MOASHAScheduler([("val/acc1", "max")], max_t=4, reduction_factor=1.0)
