"""Config validation: every bad input fails before any work, with a message that names the key."""
from __future__ import annotations

import pytest
from omegaconf.errors import OmegaConfBaseException
from hydra.errors import HydraException

from dbsl.config import ConfigError
from dbsl.plan import build_plan, dataset_size
from dbsl.timemodel import BudgetError

BAD = [
    (["dbsl.num_small=5"], "dbsl.num_small"),  # n_S > n
    (["dbsl.extra_time_ratio=0.9"], "dbsl.extra_time_ratio"),  # k < 1
    (["ps.merge_rule=mean"], "ps.merge_rule"),
    (["ps.update_factor=cubic"], "ps.update_factor"),
    (["ps.num_workers=0"], "ps.num_workers"),
    (["optim.lr=-0.1"], "optim.lr"),
    (["optim.momentum=1.5"], "optim.momentum"),
    (["optim.lr_milestones=[80,200]"], "optim.lr_milestones"),
    (["schedule.resolutions=[32,24]", "schedule.dropouts=[0.1,0.2]"], "schedule.resolutions"),
    (["schedule.resolutions=[24,32]", "schedule.dropouts=[0.1]"], "schedule.dropouts"),
    (["schedule.cycle_ends=[40,100,140]"], "schedule.cycle_ends"),
    (["train.eval_every=0"], "train.eval_every"),
    (["train.sampling=prefix"], "train.sampling"),
    (["device=tpu"], "device"),
    (["dataset.name=mnist"], "dataset.name"),
    (["model.stem=vit"], "model.stem"),
    (["executor.name=ray"], "executor.name"),
    (["ps.sync=async"], "ps.sync"),
    (["optim.momentum_reset=epoch"], "optim.momentum_reset"),
    (["train.steps=floor"], "train.steps"),
    (["dataset.augment=cutout"], "dataset.augment"),
    (["model.bn_momentum=1.0"], "model.bn_momentum"),
    (["model.bn_eps=0"], "model.bn_eps"),
    (["checkpoint_minutes=-1"], "checkpoint_minutes"),
]


@pytest.mark.parametrize("overrides,key", BAD, ids=[b[1] + ":" + b[0][0] for b in BAD])
def test_range_errors_name_the_key(compose, overrides, key):
    with pytest.raises(ConfigError) as err:
        compose(overrides)
    assert str(err.value).startswith(key + "="), str(err.value)


@pytest.mark.parametrize("override,key", [
    ("dbsl.num_small=three", "dbsl.num_small"),  # wrong type
    ("dbsl.nsmall=1", "dbsl.nsmall"),  # unknown key
    ("optim.lr=fast", "optim.lr"),
    ("schedule.epochs=1.5", "schedule.epochs"),
])
def test_type_and_unknown_key_errors_name_the_key(compose, override, key):
    with pytest.raises((OmegaConfBaseException, HydraException)) as err:
        compose([override])
    assert key in str(err.value)


def test_hardware_without_the_resolution_is_named(compose):
    cfg = compose(["scheme=cpl", "schedule.resolutions=[24,40]", "schedule.dropouts=[0.1,0.2]"])
    with pytest.raises(ConfigError, match=r"hardware=cpu_w16 has no time model for resolution 40"):
        build_plan(cfg, dataset_size(cfg))


def test_cli_rejects_bad_value_before_work(run_cli, tmp_path):
    proc = run_cli("experiment=smoke", "dbsl.num_small=7", check=False)
    assert proc.returncode != 0
    assert "dbsl.num_small=7" in proc.stderr and "ps.num_workers" in proc.stderr
    assert not list((tmp_path / "results").rglob("summary.json")), "no run record may be started"


def test_impossible_budget_is_a_budget_error(compose):
    cfg = compose(["experiment=paper_cifar100", "scheme=dbsl", "dbsl.num_small=1", "dbsl.extra_time_ratio=2.0"])
    with pytest.raises(BudgetError, match="dbsl.extra_time_ratio=2.0"):
        build_plan(cfg, dataset_size(cfg))


@pytest.mark.parametrize("preset,amp", [("paper_cifar100", False), ("compsac_cifar100", False),
                                        ("paper_imagenet", True)])
def test_paper_presets_as_the_authors_ran_them(compose, preset, amp):
    # paper section 4 / paper.md sections 6-7: CIFAR in fp32 on the GTX 1080s, AMP (mixed_float16) for ImageNet only
    cfg = compose([f"experiment={preset}"])
    assert cfg.train.amp is amp
    compsac = preset == "compsac_cifar100"
    # the COMPSAC code: a new SGD every mini-epoch, ceil(d/B) batches, shift + flip, its own model's layers
    assert cfg.optim.momentum_reset == ("mini_epoch" if compsac else "phase")
    assert cfg.train.steps == ("ceil" if compsac else "round")
    assert cfg.dataset.augment == ("shift" if compsac else "paper")
    assert (cfg.model.conv_bias, cfg.model.bn_momentum, cfg.model.bn_eps) == (
        (True, 0.99, 1e-3) if compsac else (False, 0.9, 1.001e-5))


def test_every_value_of_an_option_that_names_code_runs_code_that_exists():
    """config.IMPLEMENTATIONS is the one table of the merge rules, augmentations and executors: every value the
    config accepts imports (a renamed function fails here), and a value it would refuse names the valid ones."""
    import pytest

    from dbsl.config import CHOICES, IMPLEMENTATIONS, ConfigError, implementation

    for key, table in IMPLEMENTATIONS.items():
        assert CHOICES[key] == tuple(table)
        for name in table:
            assert callable(implementation(key, name)), (key, name)
    with pytest.raises(ConfigError, match="ps.merge_rule='median': must be one of journal, compsac, replace"):
        implementation("ps.merge_rule", "median")
