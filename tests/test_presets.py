"""Every preset composes and produces a plan: each experiment YAML with each scheme, every job of every sweep (each
grid's full Cartesian product), and each shipped hardware profile with a preset whose resolutions it covers."""
from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from dbsl.compose import compose_config
from dbsl.plan import build_plan, dataset_size
from dbsl.sweep.presets import expand_jobs, list_presets, load_preset

CONF = files("dbsl.conf")
EXPERIMENTS = sorted(p.name.removesuffix(".yaml") for p in (CONF / "experiment").iterdir() if p.name.endswith(".yaml"))
SCHEMES = sorted(p.name.removesuffix(".yaml") for p in (CONF / "scheme").iterdir() if p.name.endswith(".yaml"))
HARDWARE = sorted(p.name.removesuffix(".yaml") for p in (CONF / "hardware").iterdir() if p.name.endswith(".yaml"))


def plan_of(overrides):
    cfg = compose_config(list(overrides))
    return cfg, build_plan(cfg, dataset_size(cfg))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_plans_under_every_scheme(experiment):
    assert SCHEMES == ["baseline", "cpl", "dbsl", "hybrid"]
    for scheme in SCHEMES:
        cfg, plan = plan_of([f"experiment={experiment}", f"scheme={scheme}"])
        assert plan.scheme == scheme and plan.total_commits == cfg.schedule.epochs * cfg.ps.num_workers
        assert (plan.num_small > 0) == (scheme in ("dbsl", "hybrid") and cfg.dbsl.num_small > 0)


def test_the_papers_sweeps_are_shipped():
    presets = list_presets()
    for name in ("demo", "smoke", "table8", "table8_cpu", "table10", "table10_cpu", "table3", "table3_cpu",
                 "table5", "table5_cpu", "fashion_mnist_cpu"):
        assert name in presets, name


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_job_of_every_sweep_plans(name):
    preset = load_preset(name)
    assert preset.description
    for grid in preset.grids:
        jobs = expand_jobs(grid)
        # the full product: the number of jobs is the product of each override's number of values
        count = 1
        for override in grid:
            value = override.split("=", 1)[1]
            count *= 1 if value.startswith("[") else len(value.split(","))
        assert len(jobs) == count, (name, grid)
        for job in jobs:
            plan_of(job)


def test_every_hardware_profile_plans_a_preset_it_covers():
    """The paper's fitted coefficients (section 4), the ones its experiments did not use included (XLA rows, the
    GTX 1080 ImageNet rows), each plan a preset whose resolutions they time."""
    resolutions = {}
    for name in EXPERIMENTS:  # composed: a preset may take its schedule from another (robust_a from fmnist_study)
        cfg, _ = plan_of([f"experiment={name}"])
        resolutions[name] = set(cfg.schedule.resolutions)
    for profile in HARDWARE:
        tree = yaml.safe_load((CONF / "hardware" / f"{profile}.yaml").read_text())
        timed = {r["resolution"] for r in tree["resolutions"]}
        covered = [name for name, res in resolutions.items() if res <= timed]
        assert covered, f"hardware={profile}: no preset trains at its resolutions {sorted(timed)}"
        for name in covered:
            _, plan = plan_of([f"experiment={name}", "scheme=hybrid", f"hardware={profile}"])
            assert plan.hardware == profile
