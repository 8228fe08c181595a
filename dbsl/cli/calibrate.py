"""dbsl calibrate <hydra overrides> [--quick] [--name NAME] [options] (also python -m dbsl.calibrate): measure this
machine's time model and write a hardware profile (see :mod:`dbsl.calibration.calibrate`)."""
from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

from rich.console import Console

from ..calibration import calibrate as library
from ..calibration.calibrate import CPU_MAX_BATCH, GIB, Settings, calibrate
from ..compose import compose_config
from ..config import Config
from ..errors import ArgumentParser, cli_main
from ..machine import physical_memory, prepare


def _int_list(text: str) -> List[int]:
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 16,20,24,28")
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is empty: give a comma-separated list, e.g. 16,20,24,28, or leave "
                                         "the option out")
    return values


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m dbsl.calibrate", description=library.__doc__.split("\n\n")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="Hydra overrides as for python -m dbsl.run, e.g. model=resnet18_narrow")
    p.add_argument("--quick", action="store_true", help="fewer batch sizes and repeats, short mini-epochs (~1 min)")
    p.add_argument("--name", help="profile name (default: <device>_w<width>_<dataset>)")
    p.add_argument("--resolutions", type=_int_list, help="comma list (default: schedule.resolutions)")
    p.add_argument("--batch-sizes", type=_int_list, help="comma list of batch sizes to time (default: a grid)")
    p.add_argument("--max-batch", type=int, help=f"largest batch timed (CPU default {CPU_MAX_BATCH}; CUDA: probed)")
    p.add_argument("--memory-budget", type=float, help="GiB a worker's step may use on the CPU "
                   "(default: RAM / (ps.num_workers + 1))")
    p.add_argument("--points", type=int, help="batch sizes per resolution (default 10, quick 6)")
    p.add_argument("--repeats", type=int, help="timed repeats per batch size (default 5, quick 3)")
    p.add_argument("--kind", choices=("auto", "linear", "table"), default="auto",
                   help="time model kind (auto: linear unless the line fits badly)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed seconds; cpu: this process's CPU seconds, for one thread on the CPU, which "
                        "other processes on the cores inflate far less (what the simulated executor's measured clock "
                        "uses with train.threads=1); calibrate under the load the runs will see")
    p.add_argument("--no-validate", action="store_true", help="skip the Table-4 check of whole mini-epochs")
    p.add_argument("--validate-steps", type=int, help="at most this many batches per checked mini-epoch (0: all)")
    p.add_argument("--validate-repeats", type=int, help="timed repeats per checked mini-epoch (default 3, quick 1)")
    p.add_argument("--terms-only", action="store_true",
                   help="measure only the forecast terms of the profile the run uses (hardware=<name>, left as it "
                        "is), with its training step timed again as the forecast's own batch_time_fit")
    p.add_argument("--no-forecast-terms", action="store_true",
                   help="skip measuring the forecast's other costs (tests, merge; executor=distributed: link and "
                        "start-up) into results/conf/forecast/<name>.yaml")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error in the input")
    return p


def settings_from_args(args: argparse.Namespace, cfg: Config, cuda: bool) -> Settings:
    budget = args.memory_budget * GIB if args.memory_budget is not None else None
    if budget is None and not cuda:
        ram = physical_memory()
        budget = ram / (cfg.ps.num_workers + 1) if ram else None
    kw = dict(max_batch=args.max_batch if args.max_batch is not None else (None if cuda else CPU_MAX_BATCH),
              batch_sizes=args.batch_sizes, memory_budget=budget, kind=args.kind, validate=not args.no_validate)
    for key in ("points", "repeats", "validate_steps", "validate_repeats"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    resolutions = args.resolutions or list(cfg.schedule.resolutions)
    return (Settings.quick(resolutions, **kw) if args.quick else Settings(resolutions, **kw)).check()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Bad input (options, overrides, data, an unusable results_dir): one error line, exit status 2."""
    return cli_main(_main, argv, "nothing was written for the profile; run the command again")


def _main(argv: List[str]) -> int:
    args = parser().parse_intermixed_args(argv)  # overrides and options in any order
    console = Console(stderr=True, highlight=False)

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)

    cfg = compose_config(args.overrides)
    device = prepare(cfg.train.threads, device=cfg.device)
    if args.terms_only:
        library.calibrate_terms_only(cfg, device, quick=args.quick, clock=args.clock,
                                     command=" ".join(["python -m dbsl.calibrate"] + argv), say=say)
        return 0
    settings = settings_from_args(args, cfg, device.type == "cuda")
    calibrate(cfg, device, settings, name=args.name, clock=args.clock, quick=args.quick,
              command=" ".join(["python -m dbsl.calibrate"] + argv), say=say,
              forecast_terms=not args.no_forecast_terms)
    return 0
