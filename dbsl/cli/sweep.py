"""dbsl sweep NAME [overrides ...] (also python -m dbsl.sweep): run a named sweep preset from ``sweeps/NAME.yaml``
(what a preset holds and how its runs land and resume: :mod:`dbsl.sweep.presets`). The exit status is 1 when any
run failed, 2 when the overrides are bad (an unknown preset or key: no run starts). ``--list`` shows the presets,
``--dry-run`` the commands and runs without running, ``--status`` where each run stands (no test numbers: a
pre-registered study can be followed without an interim look).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import ArgumentParser, cli_main
from ..sweep.presets import list_presets, load_preset, run_preset
from ..sweep.status import print_status


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(_main, argv, "run the same command again: completed runs are skipped, interrupted ones resume")


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="python -m dbsl.sweep", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="a preset in sweeps/ (see --list) or a path to a preset YAML")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. seed=0,1,2 "
                        "hydra/launcher=local_parallel fail_fast=true results_dir=/data/results")
    parser.add_argument("--list", action="store_true", help="list the presets")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and run counts only")
    parser.add_argument("--status", action="store_true", help="where each run stands: status, commits recorded, "
                        "checkpoint, last write (no test numbers); give the overrides the sweep runs with")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error in the input")
    args = parser.parse_intermixed_args(argv)
    if args.list or not args.name:
        if not args.list:
            parser.print_usage(sys.stderr)
        for name, path in list_presets().items():
            print(f"{name:16s} {load_preset(str(path)).description}")
        return 0 if args.list else 2
    if args.status:
        print_status(load_preset(args.name), args.overrides)
        return 0
    return run_preset(load_preset(args.name), args.overrides, args.dry_run)
