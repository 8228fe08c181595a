"""A report is a list of sections, top to bottom (:data:`SECTIONS`), each a function of one
:class:`.context.ReportContext` that returns its section or None; adding a section is writing one function and
naming it here. The build collects the records, walks the list and writes the tables, README.md and index.html to a
fresh folder that replaces the old report only once it is complete (a crash leaves the previous report as it was);
:mod:`.outdir` keeps ``--out`` safe."""
from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Sequence

from . import sections, study
from .collect import ReportError, RunSet, group_runs, load_runs
from .context import ReportContext
from .endpoint import endpoint
from .html import index_html, readme
from .outdir import check_out, install, remove_stale_staging, staging_folder
from .prereg import demote_headings, read_prereg
from .render import Section

TITLE = "dbsl report"
# the report, top to bottom; a study's answers and pre-registration only with --prereg, the experiments one each
SECTIONS: List[Callable[[ReportContext], Section | List[Section] | None]] = [
    study.answers_section, sections.overview_section, study.prereg_section, sections.claims_section,
    sections.merge_section, study.reference_section, sections.reading_section, sections.experiment_sections,
    sections.final_models_section, study.results_section, study.protocol_section, sections.run_parameters_section,
    sections.time_model_section, study.environment_section, sections.paper_numbers_section,
    sections.paper_parameters_section, sections.runs_section]


@dataclass
class Report:
    """What a build wrote: the report folder, the records it read, its tables and figures, and what it left out."""

    out: Path
    runset: RunSet
    tables: List = field(default_factory=list)
    figures: List = field(default_factory=list)
    problems: List[str] = field(default_factory=list)  # records and files that were skipped, with the reason


def build_report(roots: Sequence[Path | str], out: Path | str, figures: bool = True,
                 notes: Path | str | None = None, prereg: Path | str | None = None, force: bool = False) -> Report:
    """``notes``: a Markdown file of the author's reading of the results, shown after the claims (paragraphs
    separated by blank lines). ``prereg``: the study's pre-registration (Markdown with YAML front matter, see
    dbsl/report/prereg.py): its contrasts are judged on its endpoint, and the answers head the report.
    ``force``: write into a folder holding files this tool did not write."""
    check_out(out, roots, force)  # before Path(): Path("") is "."
    out = Path(out)
    notes_text = read_notes(notes)
    plan = read_prereg(prereg) if prereg is not None else None
    runset = load_runs(roots)  # ReportError when there is nothing to report
    groups = group_runs(runset)
    excluded = runset.runs[~runset.runs["included"]]
    problems = [f"{r.run_dir}: {r.note}" for r in excluded.itertuples()]
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    work = staging_folder(out)
    try:
        point = endpoint(runset, plan.endpoint if plan else "best_top1")
        report = write_report(ReportContext(runset, groups, point, roots, out, work, figures, notes, notes_text,
                                            plan, problems))
        install(work, out, force)
    except BaseException as err:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise ReportError(f"--out {out}: the report could not be written ({err.strerror}); the previous report, "
                              "if any, is as it was; free space or fix the permissions and run the same command "
                              "again") from None
        raise
    return report


def write_report(ctx: ReportContext) -> Report:
    """Walks :data:`SECTIONS` and writes every section's tables, README.md and index.html into ``ctx.work``."""
    page: List[Section] = []
    for make in SECTIONS:
        made = make(ctx)
        page += [] if made is None else [made] if isinstance(made, Section) else made
    report = Report(ctx.out, ctx.runset, problems=ctx.problems)
    for section in page:
        report.tables += section.tables
        report.figures += section.figures
    for table in report.tables:
        table.write(ctx.work / "tables")
    (ctx.work / "README.md").write_text(readme(TITLE, page))
    (ctx.work / "index.html").write_text(index_html(TITLE, page))
    return report


def read_notes(notes: Path | str | None) -> List[str]:
    """The paragraphs of the --notes file (none without one); ReportError when it cannot be read."""
    if notes is None:
        return []
    try:
        text = Path(notes).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"--notes {notes}: cannot read it ({type(err).__name__}); pass a Markdown file or leave "
                          "--notes out") from err
    return [p.strip() for p in demote_headings(text).split("\n\n") if p.strip()]  # its '#' under this '##'
