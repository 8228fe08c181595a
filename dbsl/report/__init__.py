"""python -m dbsl.report: run records -> the paper's tables and figures, with the published numbers beside them.

collect (find, load, group by seed) -> tables (accuracy and time, training parameters, time-model fidelity, the
paper's numbers) -> figures -> README.md and index.html. See :func:`build_report`.
"""
from .build import Report, build_report
from .collect import ReportError

__all__ = ["Report", "ReportError", "build_report"]
