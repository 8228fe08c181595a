"""The report's sections besides the study's own (:mod:`.study`): the overview, the paper's claims against these runs
with their forest plots, whose merge is tested, the author's reading, one section per experiment with its figures,
the final models, the runs' training parameters, the time model, the paper's numbers and parameters, and the runs.
Each is a function of the :class:`.context.ReportContext` that returns its :class:`.render.Section` or None (the
experiments: one section each)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable, List

from . import figures as fig
from .artifact import merge_role_table, steered_table
from .claims import claims_tables, seed_deltas
from .collect import csv_files_with
from .context import ReportContext
from .fidelity import (BATCH_TIME_COLUMNS, VALIDATION_COLUMNS, calibration_table, fidelity_table, load_measurements,
                       validation_table)
from .finalmodel import final_model_tables
from .paper import paper_tables
from .params import paper_parameter_tables, run_parameter_tables
from .render import Figure, Section, slug
from .tables import accuracy_tables, runs_table

EXPLORATORY = ("Every scheme group against the paper's claims taken literally (\"higher\", \"no loss at all\"), on "
               "the pre-registered endpoint with every seed that paired and no multiplicity correction: exploratory. "
               "The confirmatory verdicts are those under Pre-registration.")


def rebuild_command(roots, out: Path, figures: bool = True, notes: Path | str | None = None,
                    prereg: Path | str | None = None) -> str:
    """The command that rebuilds this report from the same records (paths as they were given)."""
    flags = ([] if figures else ["--no-figures"]) + ([] if notes is None else ["--notes", str(notes)])
    flags += [] if prereg is None else ["--prereg", str(prereg)]
    return " ".join(["python -m dbsl.report", *map(str, roots), "--out", str(out), *flags])


def overview_section(ctx: ReportContext) -> Section:
    """When and from what the report was built, the command that rebuilds it, and what the records hold."""
    runs, counts = ctx.runs, ctx.runs["status"].value_counts()
    command = rebuild_command(ctx.roots, ctx.out, ctx.figures, ctx.notes, ctx.prereg and ctx.prereg.path)
    return Section("Overview", [
        f"Generated {dt.datetime.now().isoformat(timespec='seconds')} from {', '.join(map(str, ctx.roots))}. "
        f"Rebuild it with `{command}`.",
        f"{len(runs)} run records: {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
        f"{counts.get('running', 0)} incomplete, {counts.get('interrupted', 0)} interrupted, "
        f"{counts.get('malformed', 0)} malformed, {counts.get('diverged', 0)} diverged"
        + (f", {counts['pruned']} pruned by the tuner" if counts.get("pruned") else "") + "; "
        f"{int(runs['included'].sum())} completed runs in {len(ctx.groups)} groups (runs that differ only by seed) "
        "make the numbers. Failed, diverged, incomplete, interrupted and malformed records are listed under Runs and "
        "left out."])


def drawn(figures: Iterable[Figure | None]) -> List[Figure]:
    """The figures that could be drawn (a figure function returns None when its data is missing)."""
    return [f for f in figures if f is not None]


def claims_section(ctx: ReportContext) -> Section | None:
    """The paper's claims taken literally, per experiment, with a forest plot of each table."""
    claims = claims_tables(ctx.runset, ctx.groups, ctx.point) if not ctx.groups.empty else []
    if not claims:
        return None
    section = Section("The paper's claims against these runs", ([EXPLORATORY] if ctx.prereg else []) + ctx.balance,
                      claims)
    if ctx.figures:
        per_seed = seed_deltas(ctx.runset, ctx.groups, ctx.point)
        section.figures = drawn(fig.claims(t.data, per_seed, ctx.work, t.name, t.data["experiment"].iloc[0],
                                           ctx.point.key, ctx.point.label) for t in claims)
    return section


def merge_section(ctx: ReportContext) -> Section | None:
    """Whose merge the endpoint tested (small- or large-batch workers'), and the runs that steered it."""
    tables = [t for t in (merge_role_table(ctx.runset, ctx.groups, ctx.point),
                          steered_table(ctx.runset, ctx.groups, ctx.point)) if t is not None]
    return Section("Whose merge is tested", tables=tables) if tables else None


def reading_section(ctx: ReportContext) -> Section | None:
    """The author's reading of the results (--notes)."""
    return Section("Reading the results", ctx.notes_text) if ctx.notes_text else None


def experiment_sections(ctx: ReportContext) -> List[Section]:
    """One section per experiment: its accuracy-and-time table and its figures."""
    sections = []
    for table in accuracy_tables(ctx.groups) if not ctx.groups.empty else []:
        experiment = table.data["experiment"].iloc[0]
        section = Section(f"Experiment {experiment}", tables=[table])
        if ctx.figures:
            section.figures = experiment_figures(ctx, experiment)
        sections.append(section)
    return sections


def experiment_figures(ctx: ReportContext, experiment: str) -> List[Figure]:
    """Accuracy and loss against time, the final stage, the Pareto front, the planned and the realised schedule
    (of the pre-registered primary contrasts' n_S where there is one)."""
    part, stem, work = ctx.groups[ctx.groups["experiment"] == experiment], slug(experiment), ctx.work
    prefer = {c.scheme: c.num_small for c in ctx.prereg.primary} if ctx.prereg else None
    return drawn([fig.curves(part, work, f"curves_{stem}", experiment),
                  fig.final_stage(part, work, f"final_stage_{stem}", experiment),
                  fig.pareto(ctx.runs, part, work, f"pareto_{stem}", experiment, ctx.point.values, ctx.point.label),
                  fig.schedule(part, work, f"schedule_{stem}", experiment),
                  fig.realised_schedule(part, work, f"realised_schedule_{stem}", experiment, prefer)])


def final_models_section(ctx: ReportContext) -> Section | None:
    tables = final_model_tables(ctx.runs, ctx.groups)
    return Section("The final models (post-hoc checks)", tables=tables) if tables else None


def run_parameters_section(ctx: ReportContext) -> Section | None:
    """The runs' training parameters; a config that cannot be read is one of the report's problems."""
    if ctx.groups.empty:
        return None
    return Section("Training parameters of the runs (Table 2/6 layout)",
                   tables=run_parameter_tables(ctx.runset, ctx.groups, ctx.problems))


def time_model_section(ctx: ReportContext) -> Section | None:
    """The time model's fidelity to the runs, its validation and calibration tables, and the fits as figures, from
    the batch-time measurements found beside the records (files that cannot be read are problems)."""
    measured, unread = load_measurements(csv_files_with(ctx.roots, BATCH_TIME_COLUMNS), BATCH_TIME_COLUMNS)
    validated, unread_too = load_measurements(csv_files_with(ctx.roots, VALIDATION_COLUMNS), VALIDATION_COLUMNS)
    ctx.problems += unread + unread_too
    cpus = ctx.runs.set_index("run_dir")["cpu"].to_dict() if "cpu" in ctx.runs else {}
    made = (fidelity_table(ctx.groups, cpus) if not ctx.groups.empty else None, validation_table(validated),
            calibration_table(measured))
    section = Section("Time model", tables=[t for t in made if t is not None])
    if ctx.figures and not measured.empty:
        section.figures = fig.time_model(measured, ctx.work)
    return section if section.tables or section.figures else None


def paper_numbers_section(ctx: ReportContext) -> Section:
    return Section("The paper's numbers beside ours", [
        "Published values from dbsl/report/paper_results.csv (paper Tables 3, 5, 8, 10)."],
        tables=paper_tables(ctx.groups))


def paper_parameters_section(ctx: ReportContext) -> Section:
    return Section("The paper's training parameters, derived (Tables 2 and 6)", [
        "Computed by the plan (Eqs. 4-8) from the paper presets' time-model coefficients, not transcribed."],
        tables=paper_parameter_tables())


def runs_section(ctx: ReportContext) -> Section:
    """Every record found, and the files other than run records that were skipped (the problems after the
    excluded records')."""
    not_records = ctx.problems[int((~ctx.runs["included"]).sum()):]
    return Section("Runs", [f"Skipped: {p}" for p in not_records], tables=[runs_table(ctx.runset)])
