"""dbsl plan [--json] [--debug] <overrides> (also python -m dbsl.plan): print a run's plan without training."""
from __future__ import annotations

import json
import sys
from typing import List

from rich.console import Console
from rich.table import Table

from ..compose import compose_config
from ..errors import cli_main
from ..plan import Plan, build_plan, dataset_size


def plan_table(plan: Plan) -> Table:
    title = (f"{plan.scheme}: n={plan.num_workers}, n_S={plan.num_small}, k={plan.extra_time_ratio}, "
             f"d={plan.dataset_size}, d_L={plan.data_large}, d_S={plan.data_small}, "
             f"f={plan.update_factor_small:.4g}, {plan.total_commits} commits, hardware={plan.hardware}")
    table = Table(title=title)
    for col in ("phase", "epochs", "commits", "LR", "res", "dropout", "B_L", "B_S", "steps L/S", "time L/S (s)"):
        table.add_column(col, justify="right")
    n = plan.num_workers
    for p in plan.phases:
        table.add_row(str(p.index), f"{p.start // n + 1}-{p.end // n}", f"{p.start}-{p.end - 1}", f"{p.lr:g}",
                      str(p.resolution), f"{p.dropout:g}", str(p.batch_large), str(p.batch_small or "-"),
                      f"{p.steps_large}/{p.steps_small or '-'}",
                      f"{p.time_large:.3g}/{p.time_small:.3g}" if plan.num_small else f"{p.time_large:.3g}/-")
    return table


PLAN_USAGE = """usage: python -m dbsl.plan [--json] [--debug] [OVERRIDE ...]   (or: dbsl plan ...)

Print the plan of the run that `python -m dbsl.run OVERRIDE ...` would make: its phases (epochs, commits, LR,
resolution, dropout, B_L, B_S, steps and modelled mini-epoch times), the data split d_L / d_S and the update factor
f, without training. OVERRIDEs are the run's Hydra overrides, e.g. experiment=paper_cifar100 scheme=hybrid
dbsl.num_small=3.

  --json    the plan as JSON
  --debug   show the traceback of an error in the input
"""


def _main(args: List[str]) -> int:
    if "-h" in args or "--help" in args:
        print(PLAN_USAGE, end="")
        return 0
    as_json = "--json" in args
    overrides = [a for a in args if a != "--json"]
    cfg = compose_config(overrides)
    plan = build_plan(cfg, dataset_size(cfg))
    if as_json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 160).print(plan_table(plan))
    return 0


def main(argv: List[str] | None = None) -> int:
    """python -m dbsl.plan [--json] [--debug] [hydra overrides ...]; bad input: one error line, exit status 2."""
    return cli_main(_main, argv, "nothing was written")

