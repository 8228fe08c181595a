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


@pytest.mark.parametrize("k,n_small,rounding,d_large,d_small,ratio", [
    # paper Table 3 (COMPSAC, k = 1.1, int() truncation): d_S and d_S/d_L; d_L = 1.1 * 50000 / 4 = 13750
    (1.1, 1, "floor", 13750, 8750, 0.636), (1.1, 2, "floor", 13750, 11250, 0.818),
    (1.1, 3, "floor", 13750, 12083, 0.879),
    # journal code rounds: n_S = 3 gives 12292 where COMPSAC's int() gives 12291 (paper.md 2.3);
    # d_L = 1.05 * 50000 / 4 = 13125 exactly, (50000 - 13125) / 3 = 12291.67
    (1.05, 3, "round", 13125, 12292, None), (1.05, 3, "floor", 13125, 12291, None),
])
def test_data_split_matches_the_paper(k, n_small, rounding, d_large, d_small, ratio):
    split = data_split(D, N, n_small, k, rounding)
    assert split.data_small == d_small
    assert split.data_large == d_large
    if ratio is not None:
        assert round(split.ratio, 3) == ratio


@pytest.mark.parametrize("k,n_small,published_pct", [(1.05, 1, 21), (1.1, 1, 18), (1.05, 3, 74), (1.1, 3, 72)])
def test_share_of_small_batch_data_is_table5s_text(k, n_small, published_pct):
    # paper section 5.1 (Table 5's text): "n_S=1 trains only 21% of the data with small batches (18% at k=1.1);
    # n_S=3 trains 74% (72% at k=1.1)", with the COMPSAC code's int() truncation
    split = data_split(D, N, n_small, k, "floor")
    assert round(100 * n_small * split.data_small / D) == published_pct


@pytest.mark.parametrize("n_small", [1, 2, 3, 4])
def test_data_split_sums_to_the_dataset(n_small):
    split = data_split(D, N, n_small, 1.05)
    total = (N - n_small) * split.data_large + n_small * split.data_small
    assert abs(total - D) <= n_small  # only rounding separates them


def test_no_small_workers_ignores_k():
    assert data_split(D, N, 0, 1.1).data_large == D // N
    assert data_split(D, N, 0, 1.1).data_small == 0


def test_eq8_by_hand():
    # k = 1.05, n_S = 2 at 32 px, B_L = 560, journal rounding; Eq. 8 worked by hand (calculator, 10 digits):
    #   d_L = 1.05 * 50000 / 4                = 13125
    #   d_S = (50000 - 2 * 13125) / 2         = 11875
    #   a + b/B_L = 0.000505635886 + 0.015562114075 / 560 = 0.000505635886 + 0.000027789489 = 0.000533425375
    #   (a + b/B_L) * d_L / d_S = 0.000533425375 * 1.105263158 = 0.000589575415
    #   minus a                              = 0.000083939529
    #   B_S = b / that = 0.015562114075 / 0.000083939529 = 185.40  ->  185
    assert small_batch(LinearTimeModel(A32, B32), 560, D, N, 1.05, 11875) == 185
    # the balance Eq. 5 then holds up to the rounding of B_S:
    #   small: (a + b/185) * 11875 = (0.000505635886 + 0.000084119536) * 11875 = 7.00335 s
    #   large: 1.05 * (a + b/560) * 12500 = 1.05 * 0.000533425375 * 12500 = 7.00121 s
    assert (A32 + B32 / 185) * 11875 == pytest.approx(7.00335, abs=1e-4)
    assert 1.05 * (A32 + B32 / 560) * 12500 == pytest.approx(7.00121, abs=1e-4)


def test_eq8_compsac_truncates():
    # COMPSAC (paper Table 2 setting): a = 0.00056607, b = 0.014041204118, B_L = 500, k = 1.05, n_S = 1, int():
    #   d_L = int(1.05 * 50000 / 4) = 13125;  d_S = int(50000 - 3 * 13125) = 10625
    #   a + b/500 = 0.00056607 + 0.000028082408 = 0.000594152408
    #   * 13125 / 10625 (= 1.235294118)       = 0.000733952975
    #   minus a                               = 0.000167882975
    #   B_S = 0.014041204118 / 0.000167882975  = 83.637  ->  int() 83, where round() would give 84
    m = LinearTimeModel(0.00056607, 0.014041204118283607)
    assert data_split(D, N, 1, 1.05, "floor") == data_split(D, N, 1, 1.05, "round")  # both 13125 / 10625
    assert data_split(D, N, 1, 1.05, "floor").data_small == 10625
    assert small_batch(m, 500, D, N, 1.05, 10625, "floor") == 83
    assert small_batch(m, 500, D, N, 1.05, 10625, "round") == 84
    # k = 1.1, n_S = 1 (Table 3's first row, f = 0.636): d_S = 8750
    #   0.000594152408 * 13750 / 8750 (= 1.571428571) = 0.000933668070;  minus a = 0.000367598070
    #   B_S = 0.014041204118 / 0.000367598070 = 38.197  ->  38
    assert small_batch(m, 500, D, N, 1.1, 8750, "floor") == 38


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
