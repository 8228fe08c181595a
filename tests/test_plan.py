"""Plans of the paper presets against the paper's Tables 7 and 9, and the scheme switches."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dbsl.plan import Plan, build_plan, dataset_size


def plan_of(compose, *overrides):
    cfg = compose(list(overrides))
    return build_plan(cfg, dataset_size(cfg))


def epochs(plan):
    n = plan.num_workers
    return [(p.start // n + 1, p.end // n) for p in plan.phases]


def test_cifar100_hybrid_is_table7(compose):
    plan = plan_of(compose, "experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=2")
    assert epochs(plan) == [(1, 40), (41, 80), (81, 100), (101, 120), (121, 130), (131, 140)]
    assert [p.resolution for p in plan.phases] == [24, 32] * 3
    assert [p.dropout for p in plan.phases] == [0.1, 0.2] * 3
    assert [p.batch_large for p in plan.phases] == [600, 560] * 3
    assert [p.lr for p in plan.phases] == pytest.approx([0.2, 0.2, 0.02, 0.02, 0.002, 0.002])
    assert plan.total_commits == 560
    # LR milestones in global commits: epochs 80 and 120 times n = 4
    assert [p.start for p in plan.phases if p.resolution == 24] == [0, 320, 480]
    # Table 6, n_S = 2 (k = 1.05, d_L = 13125, d_S = 11875), Eq. 8 by hand with the GTX 1080 coefficients:
    #   24 px: a + b/600 = 0.000352681849 + 0.000024648056 = 0.000377329905; * 13125/11875 = 0.000417048842;
    #          minus a = 0.000064366993; B_S = 0.014788833468 / 0.000064366993 = 229.76 -> 230
    #   32 px: (see test_timemodel.test_eq8_by_hand) 185.40 -> 185
    assert [p.batch_small for p in plan.phases] == [230, 185] * 3
    assert (plan.data_large, plan.data_small) == (13125, 11875)


def test_cifar100_dbsl_alone_trains_at_full_resolution(compose):
    plan = plan_of(compose, "experiment=paper_cifar100", "scheme=dbsl", "dbsl.num_small=3")
    assert epochs(plan) == [(1, 80), (81, 120), (121, 140)]
    assert {(p.resolution, p.dropout, p.batch_large) for p in plan.phases} == {(32, 0.2, 560)}
    assert plan.num_small == 3 and plan.is_small(3) and not plan.is_small(4)


def test_imagenet_hybrid_is_table9(compose):
    plan = plan_of(compose, "experiment=paper_imagenet", "scheme=hybrid", "dbsl.num_small=4")
    assert epochs(plan) == [(1, 20), (21, 40), (41, 60), (61, 70), (71, 80), (81, 90), (91, 95), (96, 100),
                            (101, 105)]
    assert [p.resolution for p in plan.phases] == [160, 224, 288] * 3
    assert [p.dropout for p in plan.phases] == [0.1, 0.2, 0.3] * 3
    assert [p.batch_large for p in plan.phases] == [2330, 1110, 740] * 3
    assert [p.lr_stage for p in plan.phases] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert plan.total_commits == 420
    # with n_S = n every worker is small and gets d/n samples (paper.md 2.3): 1281167 / 4 = 320291.75 -> 320292
    assert plan.data_small == 320292


def test_schemes_are_two_switches(compose):
    base = plan_of(compose, "experiment=paper_cifar100", "scheme=baseline", "dbsl.num_small=3")
    assert base.num_small == 0 and base.update_factor_small == 1.0 and len(base.phases) == 3
    cpl = plan_of(compose, "experiment=paper_cifar100", "scheme=cpl", "dbsl.num_small=3")
    assert cpl.num_small == 0 and len(cpl.phases) == 6
    assert all(p.batch_small == 0 for p in cpl.phases)
    hybrid = plan_of(compose, "experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=3")
    assert hybrid.num_small == 3 and [p.resolution for p in hybrid.phases] == [p.resolution for p in cpl.phases]


def test_phase_lookup_and_warmup(compose):
    plan = plan_of(compose, "experiment=compsac_cifar100", "scheme=baseline")
    assert plan.warmup_commits == 20
    assert plan.lr_at(0) == pytest.approx(0.02)
    assert plan.lr_at(10) == pytest.approx(0.06)
    assert plan.lr_at(20) == pytest.approx(0.1)
    assert plan.phase_at(319).lr_stage == 0 and plan.phase_at(320).lr_stage == 1
    assert plan.phase_at(10_000).index == plan.phases[-1].index
    dual = plan_of(compose, "experiment=compsac_cifar100", "scheme=dbsl", "dbsl.num_small=1")
    assert dual.warmup_commits == 0  # COMPSAC warmed up the baseline only


@pytest.mark.parametrize("k,n_small,d_small,batch_small", [
    # paper Table 3's d_S; B_S as in the authors' COMPSAC result file names (tf_{,sqrt_,nw_}extra<k>_<n_S>s_<B_S>_500
    # in their repository's conf/scp/tf_npy; B_S does not depend on the update factor)
    (1.1, 1, 8750, 38), (1.1, 2, 11250, 87), (1.1, 3, 12083, 127), (1.1, 4, 12500, 160),
    (1.05, 2, 11875, 154), (1.05, 4, 12500, 242),
])
def test_compsac_plan_is_table2(compose, k, n_small, d_small, batch_small):
    plan = plan_of(compose, "experiment=compsac_cifar100", "scheme=dbsl", f"dbsl.num_small={n_small}",
                   f"dbsl.extra_time_ratio={k}")
    assert plan.data_small == d_small and plan.data_large == {1.05: 13125, 1.1: 13750}[k]
    assert {p.batch_small for p in plan.phases} == {batch_small}


def test_step_counting_round_and_ceil(compose):
    # k = 1.05, n_S = 1: d_L = 13125 at B_L = 500, d_S = 10625 at B_S = 83 (test_timemodel.test_eq8_compsac_truncates)
    compsac = plan_of(compose, "experiment=compsac_cifar100", "scheme=dbsl", "dbsl.num_small=1")
    journal = plan_of(compose, "experiment=compsac_cifar100", "scheme=dbsl", "dbsl.num_small=1", "train.steps=round")
    phase, large, small = compsac.phases[0], 4, 1
    # COMPSAC's generator: ceil(13125 / 500) = ceil(26.25) = 27 batches, the last of 13125 - 26*500 = 125 images;
    # ceil(10625 / 83) = ceil(128.01) = 129, the last of 10625 - 128*83 = 1 image
    assert (phase.steps_large, phase.steps_small) == (27, 129)
    assert (compsac.samples(large, phase), compsac.samples(small, phase)) == (13125, 10625)
    # the journal code's take(round(d/B)): round(26.25) = 26 full batches = 13000 images; round(128.01) = 128 = 10624
    phase = journal.phases[0]
    assert (phase.steps_large, phase.steps_small) == (26, 128)
    assert (journal.samples(large, phase), journal.samples(small, phase)) == (13000, 10624)
    # Eq. 2 with the ceil: t = (a*500 + b) * 27 = (0.283035 + 0.014041204) * 27 = 8.02106 s
    assert compsac.phases[0].time_large == pytest.approx(8.02106, abs=1e-5)


def test_plan_json_round_trip(compose):
    plan = plan_of(compose, "experiment=paper_imagenet", "scheme=hybrid", "dbsl.num_small=1")
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_plan_cli_prints_json_and_table(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dbsl.plan", "--json", "experiment=paper_cifar100", "scheme=hybrid",
                          "dbsl.num_small=3"], capture_output=True, text=True, check=True, cwd=tmp_path)
    data = json.loads(out.stdout)
    assert data["data_small"] == 12292 and len(data["phases"]) == 6
    table = subprocess.run([sys.executable, "-m", "dbsl.plan", "experiment=paper_cifar100", "scheme=dbsl"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "B_S" in table.stdout and "560" in table.stdout
    bad = subprocess.run([sys.executable, "-m", "dbsl.plan", "dbsl.extra_time_ratio=0.5"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "dbsl.extra_time_ratio=0.5" in bad.stderr
