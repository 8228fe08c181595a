"""python -m dbsl.report [RESULTS_DIR ...] [--out reports/NAME] [--no-figures] [--notes FILE.md] [--prereg FILE.md]"""
from __future__ import annotations

import argparse
import sys
from typing import List

from .build import build_report
from .collect import ReportError


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dbsl.report", description=(
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
    args = parser.parse_args(argv)
    try:
        report = build_report(args.roots, args.out, figures=not args.no_figures, notes=args.notes,
                              prereg=args.prereg)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(f"left out of the numbers: {problem}", file=sys.stderr)
    runs = report.runset.runs
    print(f"report: {report.out / 'index.html'} and {report.out / 'README.md'} ({len(runs)} records, "
          f"{int(runs['included'].sum())} in the numbers, {len(report.tables)} tables, {len(report.figures)} figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
