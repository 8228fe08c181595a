"""Collect -> tables -> figures -> README.md + index.html, written to a fresh folder that replaces the old report
only once it is complete (a crash leaves the previous report as it was); :mod:`.outdir` keeps ``--out`` safe."""
from __future__ import annotations

import datetime as dt
import errno
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

import pandas as pd

from . import figures as fig
from . import study
from .claims import claim_rows, claims_tables, seed_deltas
from .collect import ReportError, RunSet, csv_files_with, group_runs, load_runs
from .endpoint import balance_warnings, endpoint
from .artifact import merge_role_table, steered_table
from .finalmodel import final_model_tables
from .fidelity import (BATCH_TIME_COLUMNS, VALIDATION_COLUMNS, calibration_table, fidelity_table, load_measurements,
                       validation_table)
from .html import index_html, readme
from .outdir import check_out, install, remove_stale_staging, staging_folder
from .paper import paper_tables
from .params import paper_parameter_tables, run_parameter_tables
from .prereg import demote_headings, read_prereg
from .render import Section, slug
from .tables import accuracy_tables, runs_table


@dataclass
class Report:
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
        report = Report(out, runset, problems=problems)
        sections = _sections(report, groups, roots, work, figures, notes, notes_text, plan)
        for table in report.tables:
            table.write(work / "tables")
        title = "dbsl report"
        (work / "README.md").write_text(readme(title, sections))
        (work / "index.html").write_text(index_html(title, sections))
        install(work, out, force)
    except BaseException as err:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise ReportError(f"--out {out}: the report could not be written ({err.strerror}); the previous report, "
                              "if any, is as it was; free space or fix the permissions and run the same command "
                              "again") from None
        raise
    return report


def read_notes(notes: Path | str | None) -> List[str]:
    if notes is None:
        return []
    try:
        text = Path(notes).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"--notes {notes}: cannot read it ({type(err).__name__}); pass a Markdown file or leave "
                          "--notes out") from err
    return [p.strip() for p in demote_headings(text).split("\n\n") if p.strip()]  # its '#' under this '##'


def rebuild_command(roots, out: Path, figures: bool = True, notes: Path | str | None = None,
                    prereg: Path | str | None = None) -> str:
    """The command that rebuilds this report from the same records (paths as they were given)."""
    flags = ([] if figures else ["--no-figures"]) + ([] if notes is None else ["--notes", str(notes)])
    flags += [] if prereg is None else ["--prereg", str(prereg)]
    return " ".join(["python -m dbsl.report", *map(str, roots), "--out", str(out), *flags])


def _sections(report: Report, groups, roots, work: Path, figures: bool, notes, notes_text,
              prereg=None) -> List[Section]:
    runs = report.runset.runs
    counts = runs["status"].value_counts()
    point = endpoint(report.runset, prereg.endpoint if prereg else "best_top1")
    overview = Section("Overview", [
        f"Generated {dt.datetime.now().isoformat(timespec='seconds')} from {', '.join(map(str, roots))}. "
        f"Rebuild it with `{rebuild_command(roots, report.out, figures, notes, prereg and prereg.path)}`.",
        f"{len(runs)} run records: {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
        f"{counts.get('running', 0)} incomplete, {counts.get('interrupted', 0)} interrupted, "
        f"{counts.get('malformed', 0)} malformed, {counts.get('diverged', 0)} diverged"
        + (f", {counts['pruned']} pruned by the tuner" if counts.get("pruned") else "") + "; "
        f"{int(runs['included'].sum())} completed runs in {len(groups)} groups (runs that differ only by seed) "
        "make the numbers. Failed, diverged, incomplete, interrupted and malformed records are listed under Runs and "
        "left out."])
    sections = [overview]
    warnings = balance_warnings(groups, point)
    if prereg is not None:
        registered, judged = study.prereg_section(prereg, report.runset, groups, point)
        # the pre-registration's time rule: DBSL's interval below (k-1), without the exploratory table's slack
        rows = claim_rows(report.runset, groups, point, slack_pct=0.0) if not groups.empty else pd.DataFrame()
        sections = [study.answers_section(judged, rows, warnings), overview, registered]
    claims = claims_tables(report.runset, groups, point) if not groups.empty else []
    if claims:
        text = ([study.EXPLORATORY] if prereg else []) + [f"**Warning, balance of the endpoint.** {w}"
                                                          for w in warnings]
        section = Section("The paper's claims against these runs", text, claims)
        if figures:
            per_seed = seed_deltas(report.runset, groups, point)
            made = [fig.claims(t.data, per_seed, work, t.name, t.data["experiment"].iloc[0], point.key, point.label)
                    for t in claims]
            section.figures = [f for f in made if f is not None]
        sections.append(section)
    artifact = [t for t in (merge_role_table(report.runset, groups, point), steered_table(report.runset, groups, point))
                if t is not None]
    if artifact:
        sections.append(Section("Whose merge is tested", tables=artifact))
    reference = study.reference_section(report.runset, groups, point) if not groups.empty else None
    sections += [reference] if reference else []
    if notes_text:
        sections.append(Section("Reading the results", notes_text))
    for table in accuracy_tables(groups) if not groups.empty else []:
        experiment = table.data["experiment"].iloc[0]
        part = groups[groups["experiment"] == experiment]
        section = Section(f"Experiment {experiment}", tables=[table])
        if figures:
            stem = slug(experiment)
            prefer = {c.scheme: c.num_small for c in prereg.primary} if prereg else None
            made = [fig.curves(part, work, f"curves_{stem}", experiment),
                    fig.final_stage(part, work, f"final_stage_{stem}", experiment),
                    fig.pareto(runs, part, work, f"pareto_{stem}", experiment, point.values, point.label),
                    fig.schedule(part, work, f"schedule_{stem}", experiment),
                    fig.realised_schedule(part, work, f"realised_schedule_{stem}", experiment, prefer)]
            section.figures = [f for f in made if f is not None]
        sections.append(section)
    final_models = final_model_tables(runs, groups)
    if final_models:
        sections.append(Section("The final models (post-hoc checks)", tables=final_models))
    if not groups.empty:
        sections.append(study.results_section(report.runset, groups, point if prereg else None))
        protocol = study.protocol_section(report.runset, groups, prereg)
        sections += [protocol] if protocol else []
        sections.append(Section("Training parameters of the runs (Table 2/6 layout)",
                                tables=run_parameter_tables(report.runset, groups, report.problems)))
    measured, unread = load_measurements(csv_files_with(roots, BATCH_TIME_COLUMNS), BATCH_TIME_COLUMNS)
    validated, unread_too = load_measurements(csv_files_with(roots, VALIDATION_COLUMNS), VALIDATION_COLUMNS)
    report.problems += unread + unread_too
    cpus = report.runset.runs.set_index("run_dir")["cpu"].to_dict() if "cpu" in report.runset.runs else {}
    made = (fidelity_table(groups, cpus) if not groups.empty else None, validation_table(validated),
            calibration_table(measured))
    timing = Section("Time model", tables=[t for t in made if t is not None])
    if figures and not measured.empty:
        timing.figures = fig.time_model(measured, work)
    if timing.tables or timing.figures:
        sections.append(timing)
    environment = study.environment_section(report.runset)
    sections += [environment] if environment else []
    sections.append(Section("The paper's numbers beside ours", [
        "Published values from dbsl/report/paper_results.csv (paper Tables 3, 5, 8, 10)."],
        tables=paper_tables(groups)))
    sections.append(Section("The paper's training parameters, derived (Tables 2 and 6)", [
        "Computed by the plan (Eqs. 4-8) from the paper presets' time-model coefficients, not transcribed."],
        tables=paper_parameter_tables()))
    not_records = report.problems[int((~runs["included"]).sum()):]  # files other than the run records
    sections.append(Section("Runs", [f"Skipped: {p}" for p in not_records],
                            tables=[runs_table(report.runset)]))
    for s in sections:
        report.tables += s.tables
        report.figures += s.figures
    return sections
