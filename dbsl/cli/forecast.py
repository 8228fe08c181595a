"""dbsl forecast [--json] [--set NAME=VALUE ...] <overrides> (also python -m dbsl.forecast): how long a run takes,
replayed on the modelled clock before training; ``--report OUT`` writes the forecast's report (the paper's time
columns and the server's capacity)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List

from rich.console import Console
from rich.table import Table

from ..compose import compose_config
from ..errors import ArgumentParser, UserError, cli_main
from ..forecast import Forecast, forecast_run, training_time
from ..forecast.replay import SHARES
from ..forecast.terms import load_terms
from ..identity import override_key


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="dbsl forecast", description=(
        "Forecast a run's whole time without training: training from the time model at the plan's step counts, "
        "push and pull over the server's link, the merge, the tests and the rebuilds, under the run's sync rules. "
        "OVERRIDEs are the run's Hydra overrides, e.g. experiment=paper_cifar100 scheme=hybrid dbsl.num_small=2."))
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    p.add_argument("--json", action="store_true", help="the forecast as JSON")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a forecast term, e.g. --set link_gbit=10 (see dbsl/forecast/terms.py)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where this machine's fitted terms are (<results_dir>/conf/forecast/<hardware>.yaml; "
                        "default: the run's results_dir)")
    p.add_argument("--report", type=Path, metavar="OUT",
                   help="write the forecast report (paper's time columns, capacity against n) to OUT instead")
    p.add_argument("--no-figures", action="store_true", help="with --report: tables only")
    p.add_argument("--force", action="store_true", help="with --report: write into a folder with other files")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error in the input")
    return p


def shares_table(f: Forecast) -> Table:
    table = Table(title="each worker's time (share of the training)")
    for column in ("worker", *SHARES):
        table.add_column(column, justify="right")
    for rank, shares in f.shares().items():
        table.add_row(str(rank), *(f"{shares[k]:.1%}" for k in SHARES))
    return table


def _main(argv: List[str]) -> int:
    args = parser().parse_args([a for a in argv if a != "--debug"])
    if args.report is not None and (args.set or args.overrides or args.json):
        raise UserError("--report builds the forecast report with its own presets and terms: give it alone "
                        "(with --no-figures or --force)")
    if args.report is not None:
        from ..report.forecast import build_forecast_report

        build_forecast_report(args.report, figures=not args.no_figures, force=args.force)
        print(f"wrote {args.report}/README.md and index.html")
        return 0
    cfg = compose_config(args.overrides)
    terms = load_terms(cfg.hardware.name, args.results_dir or Path(cfg.results_dir)).with_values(args.set)
    start = time.perf_counter()
    f = forecast_run(cfg, terms)
    replay_s = time.perf_counter() - start
    base_cfg = compose_config([o for o in args.overrides if override_key(o) != "scheme"] + ["scheme=baseline"])
    base = forecast_run(base_cfg, terms).seconds
    out = {**f.to_dict(), "training_only_seconds": training_time(cfg), "baseline_seconds": base,
           "change_against_baseline_pct": 100 * (f.seconds / base - 1), "replay_seconds": replay_s,
           "overrides": args.overrides}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 120)
    busy = f.server_busy()
    console.print(f"[bold]FORECAST[/bold] (not measured) of {' '.join(args.overrides) or 'the default run'}: "
                  f"{f.seconds:,.1f} s for {f.commits} commits ({f.seconds / 3600:.2f} h); training alone "
                  f"{out['training_only_seconds']:,.1f} s")
    console.print(f"against the same config's baseline (scheme=baseline): {base:,.1f} s, "
                  f"{out['change_against_baseline_pct']:+.2f} %")
    console.print(f"server busy: inbound link {busy['inbound']:.1%}, merge {busy['merge']:.1%}, outbound link "
                  f"{busy['outbound']:.1%}")
    console.print(shares_table(f))
    console.print(f"terms: {terms.source}; replayed in {replay_s:.3f} s")
    return 0


def main(argv: List[str] | None = None) -> int:
    """dbsl forecast ...; bad input: one error line, exit status 2."""
    return cli_main(_main, argv, "nothing was written")
