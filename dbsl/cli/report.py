"""dbsl report [RESULTS_DIR ...] [--out reports/NAME] [--no-figures] [--notes FILE.md] [--prereg FILE.md] [--force]
(also python -m dbsl.report): tables, figures and the paper's claims from run records (see :mod:`dbsl.report`)."""
from __future__ import annotations

import sys
from typing import List

from ..errors import ArgumentParser, cli_main
from ..report.build import build_report


def main(argv: List[str] | None = None) -> int:
    """Bad input (no records, an unsafe --out, an unreadable --notes): one error line, exit status 2."""
    return cli_main(_main, argv, "the previous report, if any, is unchanged")


def _main(argv: List[str]) -> int:
    parser = ArgumentParser(prog="python -m dbsl.report", description=(
        "Turn the run records under RESULTS_DIR (single runs, Hydra multirun sweeps, tuning studies) into the "
        "paper's tables and figures, with the published numbers beside them."))
    parser.add_argument("roots", nargs="*", default=["results"], metavar="RESULTS_DIR",
                        help="folders searched for run records (default: results)")
    parser.add_argument("--out", default="reports/latest", help="report folder (default: reports/latest)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    parser.add_argument("--notes", metavar="FILE.md", help="your reading of the results (Markdown), shown after the "
                        "paper's claims")
    parser.add_argument("--prereg", metavar="FILE.md", help="the study's pre-registration (Markdown with YAML front "
                        "matter: endpoint, alpha, correction, seeds, primary contrasts): judged and shown at the top")
    parser.add_argument("--force", action="store_true", help="write into an earlier report of this tool's to which "
                        "files were added (its own and same-named files are replaced, the added ones stay); a folder "
                        "that is not an earlier report is refused even so")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error in the input")
    args = parser.parse_args(argv)
    report = build_report(args.roots, args.out, figures=not args.no_figures, notes=args.notes, prereg=args.prereg,
                          force=args.force)
    for problem in report.problems:
        print(f"left out of the numbers: {problem}", file=sys.stderr)
    runs = report.runset.runs
    print(f"report: {report.out / 'index.html'} and {report.out / 'README.md'} ({len(runs)} records, "
          f"{int(runs['included'].sum())} in the numbers, {len(report.tables)} tables, {len(report.figures)} figures)")
    return 0
