"""The sections that make a report a study's account: the answers at the top, the pre-registration with its
contrasts and the deviations from it, the regime's ceiling (reference runs), the per-run results, the deviations from
the paper's protocol and the environment the runs came from. Each is a function of the
:class:`.context.ReportContext` that returns its :class:`.render.Section` or None."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

import pandas as pd

from .claims import claim_rows, clock_name
from .confirmatory import CORRECTION, NAMES, Judged, confirmatory_table, judge
from .context import ReportContext
from .environment import environment_table
from .prereg import demote_headings
from .protocol import protocol_tables
from .render import Section, Table
from .tables import per_seed_table, reference_table


def time_sentence(row: pd.Series) -> str:
    """One plain sentence on a scheme's time claim, on the judged clock with the modelled one beside."""
    name = NAMES[row["scheme"]] + (f" with n_S = {int(row['num_small'])}" if row["num_small"] else "")
    clock = clock_name(row["clock"], row.get("measured_clock", ""))
    interval = ("" if math.isnan(row["delta_time_low"]) or row["delta_time_low"] == row["delta_time_high"] else
                f" [95 % CI {row['delta_time_low']:+.1f}, {row['delta_time_high']:+.1f}]")
    beside = (f" (modelled clock: {row['delta_modelled_time_pct']:+.1f} %)" if row["clock"] != "modelled" else
              " (no measured clock in these records)")
    budget = (row["extra_time_ratio"] - 1.0) * 100.0
    claim = {"within k": f"at most k = {row['extra_time_ratio']:g} times the baseline's time (the whole 95 % interval "
                         f"of the change at most {budget:+.1f} %)",
             "lower": "less time than the baseline"}[row["time_claim"]]
    verdict = str(row["time_verdict"]).split(" (")[0]
    return (f"Does {name} take {claim}? {verdict.capitalize()}: {row['delta_time_pct']:+.1f} %{interval} on the "
            f"{clock} clock{beside}.")


@dataclass
class Judgement:
    """The pre-registration's contrasts judged on the records, the deviations from it the records show, and its
    contrast tables (one per arm)."""

    judged: List[Judged]
    deviations: List[str]
    tables: List[Table]


def judgement(ctx: ReportContext) -> Judgement:
    """Every contrast judged, arm by arm in a study of several arms (each arm against its own experiment's baseline,
    the correction within the arm). Shared by the answers and the pre-registration: ``ctx.once(judgement)``."""
    prereg, groups = ctx.prereg, ctx.groups
    found = Judgement([], [], [])
    for plan in prereg.arms or [prereg]:
        mine = groups[groups["name"] == plan.experiment] if plan.arm and not groups.empty else groups
        judged, missed = judge(plan, ctx.runset, mine, ctx.point)
        for j in judged:
            j.arm = plan.arm
        found.judged += judged
        found.deviations += [f"Arm {plan.arm}: {d}" if plan.arm else d for d in missed]
        found.tables.append(confirmatory_table(plan, judged, ctx.point))
    return found


def answers_section(ctx: ReportContext) -> Section | None:
    """One plain sentence per pre-registered claim (accuracy; in a study of arms, arm by arm), then one per time
    claim of the same groups, then any warning about the endpoint's balance."""
    if ctx.prereg is None:
        return None
    judged = ctx.once(judgement).judged
    text = [f"**{_arm(j)}{'Primary' if j.contrast.primary else 'Secondary'}, {j.contrast.label}.** {j.answer}"
            for j in judged]
    arm_of = {(j.group["experiment"], j.group["label"]): _arm(j) for j in judged if j.group is not None}
    # the pre-registration's time rule: DBSL's interval below (k-1), without the exploratory table's slack
    claims = claim_rows(ctx.runset, ctx.groups, ctx.point, slack_pct=0.0) if not ctx.groups.empty else pd.DataFrame()
    for _, row in claims.iterrows():
        arm = arm_of.get((row["experiment"], row["label"]))
        if arm is not None:
            text.append(f"**{arm}Time, {row['scheme']} n_S={int(row['num_small'])}.** {time_sentence(row)}")
    return Section("Answers", text + ctx.balance)


def _arm(j: Judged) -> str:
    return f"Arm {j.arm}, " if j.arm else ""


def prereg_section(ctx: ReportContext) -> Section | None:
    """The pre-registration as written, its contrasts judged and the deviations the records show."""
    prereg = ctx.prereg
    if prereg is None:
        return None
    found = ctx.once(judgement)
    family = ("within each arm (its own question)" if prereg.arms else "over the primary contrasts")
    seeds = (", ".join(f"arm {p.arm} ({p.experiment}): {p.seeds}" for p in prereg.arms) if prereg.arms else
             str(prereg.seeds))
    text = [f"From `{prereg.path}` (its front matter fixes the endpoint, {ctx.point.text}; alpha = {prereg.alpha:g}; "
            f"{CORRECTION[prereg.correction]} {family}; seeds per configuration: {seeds}). Its text as written:"]
    if prereg.body:
        text.append(demote_headings(prereg.body))
    text.append("**Deviations from the pre-registration** (found in the records): " + (
        "none found." if not found.deviations else "\n\n" + "\n".join(f"- {d}" for d in found.deviations)))
    return Section("Pre-registration", text, tables=found.tables)


def reference_section(ctx: ReportContext) -> Section | None:
    """The regime's ceiling: the one-process reference runs beside the PS baseline (on final top-1 unless the
    endpoint is another)."""
    if ctx.groups.empty:
        return None
    point = ctx.point
    key = "final_top1" if point.key == "best_top1" else point.key
    values = ctx.runs[ctx.runs["included"]].set_index("run_dir")["final_top1_pct"] if key == "final_top1" \
        else point.values
    label = "final top-1" if key == "final_top1" else point.label
    table = reference_table(ctx.runset, ctx.groups, values, label)
    return Section("The regime's ceiling: reference runs", tables=[table]) if table is not None else None


def results_section(ctx: ReportContext) -> Section | None:
    """Every run in the numbers, with the pre-registered endpoint beside best and final top-1."""
    if ctx.groups.empty:
        return None
    point = ctx.point if ctx.prereg else None
    values = None if point is None or point.key == "best_top1" else point.values
    table = per_seed_table(ctx.runset, ctx.groups, values, None if values is None else point.label)
    return Section("Results per run", tables=[table])


def protocol_section(ctx: ReportContext) -> Section | None:
    if ctx.groups.empty:
        return None
    prereg = ctx.prereg
    n_small = next((c.num_small for c in (prereg.primary if prereg else []) if c.num_small), 2)
    tables = protocol_tables(ctx.runset, ctx.groups, prereg.deviations if prereg else None, n_small)
    return Section("Deviations from the paper's protocol", tables=tables) if tables else None


def environment_section(ctx: ReportContext) -> Section | None:
    table = environment_table(ctx.runs)
    return Section("Environment and code", tables=[table]) if table is not None else None
