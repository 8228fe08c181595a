"""The sections that make a report a study's account: the answers at the top, the pre-registration with its
contrasts and the deviations from it, the regime's ceiling (reference runs), the per-run results, the deviations from
the paper's protocol and the environment the runs came from."""
from __future__ import annotations

import math
from typing import List

import pandas as pd

from .claims import clock_name
from .collect import RunSet
from .confirmatory import CORRECTION, NAMES, Judged, confirmatory_table, judge
from .endpoint import Endpoint
from .environment import environment_table
from .prereg import PreRegistration, demote_headings
from .protocol import protocol_tables
from .render import Section
from .tables import per_seed_table, reference_table

EXPLORATORY = ("Every scheme group against the paper's claims taken literally (\"higher\", \"no loss at all\"), on "
               "the pre-registered endpoint with every seed that paired and no multiplicity correction: exploratory. "
               "The confirmatory verdicts are those under Pre-registration.")


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


def answers_section(judged: List[Judged], claims: pd.DataFrame, warnings: List[str] = ()) -> Section:
    """One plain sentence per pre-registered claim (accuracy; in a study of arms, arm by arm), then one per time
    claim of the same groups, then any warning about the endpoint's balance."""
    text = [f"**{_arm(j)}{'Primary' if j.contrast.primary else 'Secondary'}, {j.contrast.label}.** {j.answer}"
            for j in judged]
    arm_of = {(j.group["experiment"], j.group["label"]): _arm(j) for j in judged if j.group is not None}
    for _, row in claims.iterrows():
        arm = arm_of.get((row["experiment"], row["label"]))
        if arm is not None:
            text.append(f"**{arm}Time, {row['scheme']} n_S={int(row['num_small'])}.** {time_sentence(row)}")
    text += [f"**Warning, balance of the endpoint.** {w}" for w in warnings]
    return Section("Answers", text)


def _arm(j: Judged) -> str:
    return f"Arm {j.arm}, " if j.arm else ""


def prereg_section(prereg: PreRegistration, runset: RunSet, groups: pd.DataFrame, point: Endpoint
                   ) -> tuple[Section, List[Judged]]:
    """The pre-registration as written, its contrasts judged (arm by arm in a study of several arms, each arm
    against its own experiment's baseline, the correction within the arm) and the deviations the records show."""
    plans = prereg.arms or [prereg]
    judged, deviations, tables = [], [], []
    for plan in plans:
        mine = groups[groups["name"] == plan.experiment] if plan.arm and not groups.empty else groups
        found, missed = judge(plan, runset, mine, point)
        for j in found:
            j.arm = plan.arm
        judged += found
        deviations += [f"Arm {plan.arm}: {d}" if plan.arm else d for d in missed]
        tables.append(confirmatory_table(plan, found, point))
    family = ("within each arm (its own question)" if prereg.arms else "over the primary contrasts")
    seeds = (", ".join(f"arm {p.arm} ({p.experiment}): {p.seeds}" for p in plans) if prereg.arms else
             str(prereg.seeds))
    text = [f"From `{prereg.path}` (its front matter fixes the endpoint, {point.text}; alpha = {prereg.alpha:g}; "
            f"{CORRECTION[prereg.correction]} {family}; seeds per configuration: {seeds}). Its text as written:"]
    if prereg.body:
        text.append(demote_headings(prereg.body))
    text.append("**Deviations from the pre-registration** (found in the records): " + (
        "none found." if not deviations else "\n\n" + "\n".join(f"- {d}" for d in deviations)))
    return Section("Pre-registration", text, tables=tables), judged


def reference_section(runset: RunSet, groups: pd.DataFrame, point: Endpoint) -> Section | None:
    key = "final_top1" if point.key == "best_top1" else point.key
    values = runset.runs[runset.runs["included"]].set_index("run_dir")["final_top1_pct"] if key == "final_top1" \
        else point.values
    label = "final top-1" if key == "final_top1" else point.label
    table = reference_table(runset, groups, values, label)
    return Section("The regime's ceiling: reference runs", tables=[table]) if table is not None else None


def results_section(runset: RunSet, groups: pd.DataFrame, point: Endpoint | None) -> Section:
    values = None if point is None or point.key == "best_top1" else point.values
    table = per_seed_table(runset, groups, values, None if values is None else point.label)
    return Section("Results per run", tables=[table])


def protocol_section(runset: RunSet, groups: pd.DataFrame, prereg: PreRegistration | None) -> Section | None:
    n_small = next((c.num_small for c in (prereg.primary if prereg else []) if c.num_small), 2)
    tables = protocol_tables(runset, groups, prereg.deviations if prereg else None, n_small)
    return Section("Deviations from the paper's protocol", tables=tables) if tables else None


def environment_section(runset: RunSet) -> Section | None:
    table = environment_table(runset.runs)
    return Section("Environment and code", tables=[table]) if table is not None else None
