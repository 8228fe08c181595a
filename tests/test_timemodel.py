"""The paper's formulas: data split (Eqs. 4-6), small batch (Eq. 8), time model (Eqs. 2-3), update factors."""
from __future__ import annotations

import math

import pytest

from dbsl.timemodel import (BudgetError, LinearTimeModel, TableTimeModel, data_split, fit_linear, small_batch,
                            update_factor)

# GTX 1080, CIFAR fp32 (paper.md section 4)
A24, B24 = 0.00035268184915307385, 0.014788833468238893
A32, B32 = 0.0005056358858583448, 0.015562114074817612
D, N = 50_000, 4


@pytest.mark.parametrize("k,n_small,rounding,d_small,ratio", [
    # paper Table 3 (COMPSAC, k = 1.1, int() truncation): d_S and d_S/d_L
    (1.1, 1, "floor", 8750, 0.636), (1.1, 2, "floor", 11250, 0.818), (1.1, 3, "floor", 12083, 0.879),
    # journal code rounds: n_S = 3 gives 12292 where COMPSAC's int() gives 12291 (paper.md 2.3)
    (1.05, 3, "round", 12292, None), (1.05, 3, "floor", 12291, None),
])
def test_data_split_matches_the_paper(k, n_small, rounding, d_small, ratio):
    split = data_split(D, N, n_small, k, rounding)
    assert split.data_small == d_small
    assert split.data_large == (round if rounding == "round" else int)(k * D / N)
    if ratio is not None:
        assert round(split.ratio, 3) == ratio


@pytest.mark.parametrize("n_small", [1, 2, 3, 4])
def test_data_split_sums_to_the_dataset(n_small):
    split = data_split(D, N, n_small, 1.05)
    total = (N - n_small) * split.data_large + n_small * split.data_small
    assert abs(total - D) <= n_small  # only rounding separates them


def test_no_small_workers_ignores_k():
    assert data_split(D, N, 0, 1.1).data_large == D // N
    assert data_split(D, N, 0, 1.1).data_small == 0


def test_eq8_by_hand():
    # k = 1.05, n_S = 2 at 32 px, B_L = 560, journal rounding, written out from Eq. 8 with d_L = k*d/n
    d_large_exact = 1.05 * D / N
    d_small = round((D - 2 * round(d_large_exact)) / 2)
    by_hand = B32 / ((A32 + B32 / 560) * d_large_exact / d_small - A32)
    got = small_batch(LinearTimeModel(A32, B32), 560, D, N, 1.05, d_small)
    assert got == round(by_hand)
    assert 0 < got < 560
    # the balance Eq. 5 then holds up to the rounding of B_S
    small_time = (A32 + B32 / got) * d_small
    large_time = 1.05 * (A32 + B32 / 560) * D / N
    assert small_time == pytest.approx(large_time, rel=0.01)


def test_eq8_compsac_truncates():
    m = LinearTimeModel(0.00056607, 0.014041204118283607)
    split = data_split(D, N, 1, 1.05, "floor")
    exact = m.b / ((m.a + m.b / 500) * 1.05 * D / N / split.data_small - m.a)
    assert small_batch(m, 500, D, N, 1.05, split.data_small, "floor") == int(exact)


def test_table_model_solve_agrees_with_closed_form():
    line = LinearTimeModel(A24, B24)
    sizes = (8, 32, 64, 128, 256, 512, 600, 1024)
    table = TableTimeModel(sizes, tuple(line.batch_time(b) for b in sizes))
    split = data_split(D, N, 2, 1.1)
    closed = small_batch(line, 600, D, N, 1.1, split.data_small)
    numeric = small_batch(table, 600, D, N, 1.1, split.data_small)
    assert abs(closed - numeric) <= 1


def test_budget_errors_name_the_knob():
    line = LinearTimeModel(A32, B32)
    with pytest.raises(BudgetError, match="B_S=560 >= B_L=560"):  # k = 1: nothing to spend on a smaller batch
        small_batch(line, 560, D, N, 1.0, data_split(D, N, 2, 1.0).data_small)
    with pytest.raises(BudgetError, match="dbsl.extra_time_ratio"):  # large workers eat all the data
        data_split(D, N, 1, 1.4)
    flat = TableTimeModel((10, 100, 1000), (1.0, 10.0, 100.0))  # per-sample time never falls: no B_S helps
    with pytest.raises(BudgetError, match="raise dbsl.extra_time_ratio"):
        small_batch(flat, 1000, D, N, 1.05, data_split(D, N, 2, 1.05).data_small)


def test_epoch_time_eq2_and_eq3():
    m = LinearTimeModel(0.001, 0.01)
    assert m.epoch_time(100, 250) == pytest.approx((0.001 * 100 + 0.01) * 3)  # ceil(250/100) = 3 batches
    assert m.epoch_time_simplified(100, 250) == pytest.approx((0.001 + 0.01 / 100) * 250)


def test_update_factors():
    split = data_split(D, N, 1, 1.1, "floor")
    assert update_factor(split, "linear") == pytest.approx(8750 / 13750)
    assert update_factor(split, "sqrt") == pytest.approx(math.sqrt(8750 / 13750))
    assert update_factor(split, "none") == 1.0


def test_fit_linear_recovers_a_line():
    a, b, r2 = fit_linear([8, 16, 32, 64], [0.001 * x + 0.02 for x in (8, 16, 32, 64)])
    assert (a, b) == (pytest.approx(0.001), pytest.approx(0.02))
    assert r2 == pytest.approx(1.0)


def test_table_must_be_monotone():
    with pytest.raises(ValueError, match="non-decreasing"):
        TableTimeModel((8, 16, 32), (0.3, 0.2, 0.4))
