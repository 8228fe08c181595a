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
    bs = {p.resolution: p.batch_small for p in plan.phases}
    assert 0 < bs[24] < 600 and 0 < bs[32] < 560 and len(set(p.batch_small for p in plan.phases)) == 2


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
    # with n_S = n every worker is small and gets d/n samples (paper.md 2.3)
    assert plan.data_small == round(1_281_167 / 4)


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
