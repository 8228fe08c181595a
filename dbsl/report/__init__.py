"""python -m dbsl.report: run records -> the paper's tables and figures, with the published numbers beside them.

collect (find, load, group by seed) -> one :class:`.context.ReportContext` -> the sections, top to bottom
(:data:`.build.SECTIONS`; :mod:`.study` and :mod:`.sections`), each drawing on the table modules (accuracy and time,
claims, training parameters, time-model fidelity, the paper's numbers, ...) and :mod:`.figures` -> README.md and
index.html (:mod:`.html`), all made of :mod:`.render`'s tables, figures and sections. See :func:`build_report`.
"""
from .build import Report, build_report
from .collect import ReportError

__all__ = ["Report", "ReportError", "build_report"]
