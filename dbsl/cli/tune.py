"""dbsl tune [options] <overrides> (also python -m dbsl.tune): tune the small-batch ratio with Optuna (see
:mod:`dbsl.tune`, whose description is the command's help)."""
from __future__ import annotations

import argparse
import logging
import math
from typing import Sequence

import optuna

from .. import tune as library
from ..compose import compose_config
from ..config import Config, ConfigError
from ..errors import ArgumentParser, cli_main
from ..paths import check_name
from ..tune import PARAMS, TuneSpec, check_storage, tune


def parse_range(text: str, kind=float) -> tuple:
    parts = [kind(p) for p in text.split(":")]
    if len(parts) not in (2, 3) or parts[0] > parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW:HIGH or LOW:HIGH:STEP with LOW <= HIGH")
    return tuple(parts)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m dbsl.tune", description=library.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the tuned config (experiment=..., scheme=...)")
    p.add_argument("--study", help="study name (default: <experiment name>_<scheme>)")
    p.add_argument("--trials", type=int, default=20, help="finished trials wanted in the study in total (20)")
    p.add_argument("--params", default="num_small,extra_time_ratio",
                   help="what to search: num_small and one of extra_time_ratio | batch_ratio (B_S/B_L)")
    p.add_argument("--num-small", type=lambda s: parse_range(s, int), help="n_S range LOW:HIGH (0:n)")
    p.add_argument("--extra-time-ratio", type=parse_range, help="k range LOW:HIGH[:STEP] (1.01:1.2:0.01)")
    p.add_argument("--batch-ratio", type=parse_range, help="B_S/B_L range LOW:HIGH[:STEP] (0.05:0.95:0.05)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=float, help="modelled-time budget in seconds")
    budget.add_argument("--budget-ratio", type=float, help="budget as a multiple of the n_S=0 plan's time")
    p.add_argument("--objective", choices=("accuracy", "pareto"), default="accuracy")
    p.add_argument("--pruner", choices=("median", "none"), default="median", help="(one objective only)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--storage", help="an Optuna storage URL instead of the journal file (e.g. sqlite:///x.db)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error in the input")
    return p


def spec_from_args(args: argparse.Namespace, base: Config) -> TuneSpec:
    params = [p.strip() for p in args.params.split(",") if p.strip()]
    unknown = set(params) - set(PARAMS)
    if unknown or not params:
        raise ConfigError(f"--params={args.params!r}: choose from {', '.join(PARAMS)}")
    if {"extra_time_ratio", "batch_ratio"} <= set(params):
        raise ConfigError("--params: extra_time_ratio and batch_ratio both set k; search one of them")
    if not base.scheme.dual_batch:
        raise ConfigError(f"scheme={base.scheme.name}: the small-batch ratio only matters with dual batches; "
                          "tune scheme=dbsl or scheme=hybrid")
    if args.trials < 1:
        raise ConfigError(f"--trials={args.trials}: must be >= 1 (the finished trials wanted in the study)")
    for option, value in (("--budget", args.budget), ("--budget-ratio", args.budget_ratio)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{option}={value:g}: must be > 0 (modelled seconds, or a multiple of the n_S=0 plan's)")
    n = base.ps.num_workers
    spec = TuneSpec(overrides=list(args.overrides), params=params, objective=args.objective,
                    num_small=args.num_small or (0, n), budget=args.budget, budget_ratio=args.budget_ratio)
    if args.extra_time_ratio:
        spec.extra_time_ratio = _with_step(args.extra_time_ratio, 0.01)
    if args.batch_ratio:
        spec.batch_ratio = _with_step(args.batch_ratio, 0.05)
    low, high = spec.num_small
    if not 0 <= low <= high <= n:
        raise ConfigError(f"--num-small={low}:{high}: n_S must lie in 0..ps.num_workers={n}")
    if spec.extra_time_ratio[0] < 1:
        raise ConfigError(f"--extra-time-ratio: k must be >= 1, not {spec.extra_time_ratio[0]}")
    if not 0 < spec.batch_ratio[0] <= spec.batch_ratio[1] <= 1:
        raise ConfigError(f"--batch-ratio: B_S/B_L must lie in (0, 1], not {spec.batch_ratio[:2]}")
    return spec


def _with_step(values: tuple, step: float) -> tuple:
    return tuple(values) if len(values) == 3 else (*values, step)


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input (options, overrides, an impossible budget, an unusable results_dir): one error line, status 2."""
    return cli_main(_main, argv, "the same command continues the study (an interrupted trial runs again first)")


def _main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = build_parser().parse_intermixed_args(argv)
    storage = None if args.storage is None else check_storage(args.storage)
    base = compose_config(args.overrides)
    spec = spec_from_args(args, base)
    name = args.study or f"{base.name}_{base.scheme.name}"
    check_name(name, "--study")
    tune(spec, name, base, args.trials, storage=storage, seed=args.seed, pruner=args.pruner)
    return 0
