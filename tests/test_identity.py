"""Run identity has one home (dbsl/identity.py): Hydra's directory names use the same key list, and the report
groups by the same rule."""
from __future__ import annotations

from importlib.resources import files

import yaml

from dbsl.identity import NON_IDENTITY_KEYS, identity_config, identity_hash, identity_overrides, run_dirname


def test_hydra_reads_the_keys_it_leaves_out_of_run_directory_names_from_identity_py(run_cli, tmp_path):
    """The config tree names no key list of its own (it reads NON_IDENTITY_KEYS through a resolver), and a real
    multirun leaves those keys out of its run folders' names while keeping the others."""
    conf = yaml.safe_load((files("dbsl.conf") / "config.yaml").read_text())
    assert conf["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"] == "${dbsl_non_identity_keys:}"
    run_cli("-m", "experiment=smoke", "model.width=2", "dataset.synthetic_train=256", "dataset.synthetic_test=64",
            "schedule.epochs=1", "optim.lr_milestones=[]", "schedule.cycle_ends=[]", "scheme=baseline", "seed=3",
            "train.threads=1", "checkpoint_every=5", "logger.progress=false", "sweep_name=names",
            f"results_dir={tmp_path / 'results'}", multirun=False)
    runs = [p.name for p in (tmp_path / "results" / "sweeps" / "names").iterdir() if p.is_dir() and p.name[0] != "."]
    assert runs == ["dataset.synthetic_test=64,dataset.synthetic_train=256,experiment=smoke,model.width=2,"
                    "optim.lr_milestones=[],schedule.cycle_ends=[],schedule.epochs=1,scheme=baseline,seed=3"]


def test_identity_overrides_drop_where_and_how_a_run_goes():
    overrides = ["scheme=dbsl", "+logger.tags=[a]", "train.threads=2", "seed=1", "hydra/launcher=local_parallel"]
    assert identity_overrides(overrides) == ["scheme=dbsl", "seed=1"]  # the seed is a run of its own


def test_groups_span_seeds_and_ignore_dual_batch_keys_without_small_workers():
    base = {"scheme.name": "baseline", "dbsl.num_small": 0, "dbsl.extra_time_ratio": 1.05, "seed": 0,
            "logger.wandb": False, "output_dir": "a", "optim.lr": 0.1}
    other_seed = dict(base, seed=1, output_dir="b", **{"dbsl.extra_time_ratio": 1.1, "logger.wandb": True})
    assert identity_hash(identity_config(base, 0)) == identity_hash(identity_config(other_seed, 0))
    # with small-batch workers k matters
    assert identity_hash(identity_config(base, 2)) != identity_hash(identity_config(other_seed, 2))
    assert identity_hash(identity_config(base, 0)) != identity_hash(identity_config(dict(base, **{"optim.lr": 0.2}), 0))


def test_run_directory_names():
    assert run_dirname("") == "default"
    assert run_dirname("hydra/launcher=x,scheme=dbsl") == "hydra_launcher=x,scheme=dbsl"
    long = run_dirname("a=" + "x" * 300)
    assert len(long) == 160 + 1 + 12 and long.startswith("a=xxx")
