"""dbsl report [RESULTS_DIR ...] [--out reports/NAME] [options] (also python -m dbsl.report): tables, figures and the
paper's claims from run records.

The report's own entry point (:mod:`dbsl.report.__main__`) still reads these arguments: ``dbsl.report`` is being
reworked on its own, so its argument parsing moves here once that settles. This module hands the arguments on.
"""
from __future__ import annotations

from typing import List

from ..report.__main__ import main as report_main


def main(argv: List[str] | None = None) -> int:
    return report_main(argv)
