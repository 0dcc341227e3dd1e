"""Computed params/MACs against every published value of the paper, at the printed precision."""
from __future__ import annotations

import pytest

import mfsearch
from mfsearch.published import PUBLISHED

ROWS = [r for r in PUBLISHED if r.pretrain == "in1k"]


def test_table_has_every_published_in1k_row():
    assert sum(r.resolution == 224 for r in ROWS) == 23
    assert sum(r.resolution == 384 for r in ROWS) == 8


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.model}@{r.resolution}")
def test_cost_matches_paper(row):
    cost = mfsearch.count_cost(row.model, img_size=row.resolution)
    params_decimals = 0 if isinstance(row.params_m, int) else 1
    assert round(cost.params / 1e6, params_decimals) == row.params_m
    assert round(cost.frozen_params / 1e6, 1) == row.frozen_m
    assert round(cost.macs / 1e9, 1) == row.macs_g


def test_examples_from_the_issue():
    caformer = mfsearch.count_cost("caformer_s18")
    assert (round(caformer.params / 1e6), round(caformer.macs / 1e9, 1)) == (26, 4.1)
    rand = mfsearch.count_cost("randformer_s12")
    assert (round(rand.params / 1e6, 1), round(rand.frozen_params / 1e6, 1), round(rand.macs / 1e9, 1)) == \
        (11.9, 0.2, 1.9)
    # Exact counts, from the reference's analytic totals.
    assert caformer.params == 26_341_656
    assert rand.frozen_params == 6 * 196 ** 2 + 2 * 49 ** 2


def test_parts_sum_to_total():
    cost = mfsearch.count_cost("caformer_s18")
    assert [p.name for p in cost.parts] == ["stem", "stage0", "stage1", "stage2", "stage3", "head"]
    assert sum(p.macs for p in cost.parts) == cost.macs
    assert sum(p.params for p in cost.parts) == cost.params
    assert [p.grid for p in cost.parts[1:5]] == [(56, 56), (28, 28), (14, 14), (7, 7)]
