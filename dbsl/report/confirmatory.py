"""The pre-registered analysis: each contrast of a pre-registration judged on its endpoint, paired by seed against the
baseline with the same settings, with the planned test, the multiplicity correction over the primary contrasts, a
power statement, and every deviation from the plan the records show.

Superiority: two-sided paired t-test of the endpoint's change; shown when the adjusted p-value is below alpha and the
change is positive (the opposite when negative). Non-inferiority with margin m: one-sided paired t-test of
H0 change <= -m; shown when its adjusted p-value is below alpha (uncorrected, that is: the lower end of the
(1 - 2 alpha) two-sided interval lies above -m). Secondary contrasts get the same statistics, uncorrected and labelled
exploratory. Formulas: dbsl/report/stats.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

import pandas as pd

from . import stats
from .collect import ReportError, RunSet, is_reference
from .endpoint import Endpoint
from .prereg import Contrast, PreRegistration
from .render import Table, num

CONFIDENCE = 0.95
NAMES = {"dbsl": "DBSL", "cpl": "CPL", "hybrid": "the hybrid"}
CORRECTION = {"holm": "the Holm correction", "bonferroni": "the Bonferroni correction", "none": "no correction"}


@dataclass
class Judged:
    contrast: Contrast
    group: pd.Series | None = None
    baseline: pd.Series | None = None
    seeds: List[int] = field(default_factory=list)  # the paired seeds analysed
    diffs: List[float] = field(default_factory=list)
    result: stats.Paired | None = None
    ni_low: float = math.nan  # non-inferiority: lower end of the (1 - 2 alpha) interval
    p_adjusted: float = math.nan
    verdict: str = "not tested"
    answer: str = ""
    power: str = ""
    arm: str | None = None  # the arm of a study of several arms


def find_group(prereg: PreRegistration, groups: pd.DataFrame, contrast: Contrast) -> pd.Series | None:
    """The group a contrast refers to (ReportError when several match: the pre-registration must say which)."""
    if groups.empty:
        return None
    match = groups[(groups["scheme"] == contrast.scheme) & (groups["num_small"] == contrast.num_small)
                   & ~groups["num_workers"].map(is_reference)]
    if prereg.experiment is not None:
        match = match[match["name"] == prereg.experiment]
    if len(match) > 1:
        raise ReportError(f"--prereg {prereg.path}: {contrast.label} matches {len(match)} groups of runs ("
                          f"{'; '.join(match['experiment'] + ': ' + match['label'])}); set `experiment:` in its "
                          "front matter or pass only the study's folders")
    return match.iloc[0] if len(match) else None


def judge(prereg: PreRegistration, runset: RunSet, groups: pd.DataFrame, point: Endpoint
          ) -> tuple[List[Judged], List[str]]:
    """Every contrast judged, and the deviations from the pre-registration (one sentence each)."""
    runs = runset.runs.set_index("run_dir")
    by_group = groups.set_index("group") if not groups.empty else groups
    deviations: List[str] = []
    judged: List[Judged] = []
    for c in prereg.contrasts:
        j = Judged(c)
        judged.append(j)
        j.group = find_group(prereg, groups, c)
        if j.group is None:
            deviations.append(f"{c.label}: no completed runs, so the {'primary' if c.primary else 'secondary'} "
                              "contrast could not be tested.")
            continue
        if pd.isna(j.group["baseline_group"]):
            deviations.append(f"{c.label}: no completed baseline run with the same settings, so it could not be "
                              "tested.")
            continue
        j.baseline = by_group.loc[j.group["baseline_group"]]
        ours = {int(runs.loc[d, "seed"]): point.values.get(d) for d in j.group["run_dirs"]}
        base = {int(runs.loc[d, "seed"]): point.values.get(d) for d in j.baseline["run_dirs"]}
        j.seeds = _paired_seeds(prereg, c, ours, base, point, deviations)
        j.diffs = [ours[s] - base[s] for s in j.seeds]
        if len(j.seeds) < 2:
            continue
        j.result = stats.paired(j.diffs, CONFIDENCE, c.margin_pp if c.test == "noninferiority" else None)
        if c.test == "noninferiority":
            j.ni_low = stats.paired(j.diffs, 1.0 - 2.0 * prereg.alpha).low
    primary = [j for j in judged if j.contrast.primary]
    adjusted = stats.adjust([j.result.p if j.result else math.nan for j in primary], prereg.correction)
    for j, p in zip(primary, adjusted):
        j.p_adjusted = p
    for j in judged:
        if not j.contrast.primary and j.result:
            j.p_adjusted = j.result.p  # exploratory: uncorrected
        _verdict(prereg, j, len(primary))
    deviations += _incomplete(runset)
    deviations += _extra_configs(prereg, groups)
    return judged, deviations


def _paired_seeds(prereg: PreRegistration, c: Contrast, ours: dict, base: dict, point: Endpoint,
                  deviations: List[str]) -> List[int]:
    """The seeds a contrast is tested on: those with the endpoint on both sides (``ours``, ``base``: seed ->
    endpoint), at most the pre-registered number; every seed left out, and a shortfall, is a deviation."""
    missing = sorted(s for s, v in {**ours, **base}.items() if pd.isna(v))
    if missing:
        deviations.append(f"{c.label}: the endpoint ({point.text}) cannot be computed for seed(s) "
                          f"{', '.join(map(str, missing))} (too few evaluations); left out.")
    ours = {s for s, v in ours.items() if pd.notna(v)}
    base = {s for s, v in base.items() if pd.notna(v)}
    paired, unpaired = sorted(ours & base), sorted(ours ^ base)
    if unpaired:
        deviations.append(f"{c.label}: seed(s) {', '.join(map(str, unpaired))} completed on one side only "
                          "(the scheme or its baseline) and cannot be paired; left out.")
    if len(paired) > prereg.seeds:
        deviations.append(f"{c.label}: {len(paired)} paired seeds, more than the {prereg.seeds} pre-registered; "
                          f"the test uses the first {prereg.seeds} ({', '.join(map(str, paired[:prereg.seeds]))})"
                          f" and leaves out {', '.join(map(str, paired[prereg.seeds:]))}.")
        paired = paired[:prereg.seeds]
    elif len(paired) < prereg.seeds:
        deviations.append(f"{c.label}: {len(paired)} paired seeds, fewer than the {prereg.seeds} pre-registered.")
    return paired


def _incomplete(runset: RunSet) -> List[str]:
    runs = runset.runs[~runset.runs["included"]]
    out = []
    for status, part in runs.groupby("status", sort=True):
        names = [f"{r.scheme} n_S={int(r.num_small)} seed {int(r.seed)}" if pd.notna(r.get("seed"))
                 and pd.notna(r.get("num_small")) else str(r.run_dir) for _, r in part.iterrows()]
        word = {"running": "incomplete", "failed": "failed", "malformed": "malformed"}.get(status, status)
        out.append(f"{len(part)} run record(s) {word}, not in the numbers: {'; '.join(names)}.")
    return out


def _extra_configs(prereg: PreRegistration, groups: pd.DataFrame) -> List[str]:
    if groups.empty:
        return []
    named = {(c.scheme, c.num_small) for c in prereg.contrasts}
    extra = groups[groups.apply(lambda g: g["scheme"] in NAMES and (g["scheme"], g["num_small"]) not in named
                                and not is_reference(g.get("num_workers")), axis=1)]
    if extra.empty:
        return []
    return [f"Runs of configurations the pre-registration does not name ({', '.join(extra['label'])}) are reported "
            "as exploratory only."]


def _level(prereg: PreRegistration, m: int, primary: bool) -> float:
    """The strictest level a contrast faces: alpha/m under Holm's first step or Bonferroni, alpha otherwise."""
    return prereg.alpha / m if primary and prereg.correction != "none" and m else prereg.alpha


def _verdict(prereg: PreRegistration, j: Judged, m: int) -> None:
    """A contrast's verdict, its answer in one plain sentence and its power statement (``m``: primary contrasts)."""
    c, r = j.contrast, j.result
    name = f"{NAMES[c.scheme]} with n_S = {c.num_small}" if c.num_small or c.scheme != "cpl" else NAMES[c.scheme]
    if r is None:
        j.verdict = "not tested" + (f" ({len(j.seeds)} paired seed)" if j.group is not None else " (no runs)")
        j.answer = (f"Is {name} {'better than' if c.test == 'superiority' else 'no worse than'} the baseline? "
                    f"Not tested: {'fewer than two paired seeds' if j.group is not None else 'no completed runs'}.")
        j.power = "no power: fewer than two paired seeds"
        return
    level = _level(prereg, m, c.primary)
    corrected = f"{prereg.correction.capitalize()}-adjusted " if c.primary and prereg.correction != "none" else ""
    p_value = _p(j.p_adjusted)
    p_text = f"{corrected}p {p_value if p_value.startswith('<') else '= ' + p_value}"
    ci = f"{r.mean:+.2f} pp [95 % CI {r.low:+.2f}, {r.high:+.2f}] over {r.n} paired seeds"
    (_superiority if c.test == "superiority" else _noninferiority)(prereg, j, name, level, ci, p_text)


def _superiority(prereg: PreRegistration, j: Judged, name: str, level: float, ci: str, p_text: str) -> None:
    """A superiority contrast's verdict, answer and power (``ci``: its change with the interval)."""
    c, r = j.contrast, j.result
    detect = stats.detectable_effect(r.sd, r.n, level)
    j.power = (f"half-width ±{r.half_width:.2f} pp; a two-sided paired t-test at {level:.3g} detects "
               f"{detect:.2f} pp with 80 % power at the observed s.d. {r.sd:.2f} pp" if r.sd > 0 else
               "exact: the same change in every seed")
    if prereg.effect_pp and r.sd > 0:
        j.power += (f"; power for the planned {prereg.effect_pp:g} pp: "
                    f"{100 * stats.power(prereg.effect_pp, r.sd, r.n, level):.0f} %")
    if j.p_adjusted < prereg.alpha:
        j.verdict = "shown: higher" if r.mean > 0 else "opposite: lower"
        word = "Yes" if r.mean > 0 else "No, it is worse"
    else:
        j.verdict = "not shown: no resolved difference"
        word = "Not shown"
    j.answer = (f"Does {name} raise {prereg.endpoint_text} over the baseline? {word}: {ci}, {p_text}"
                f"{'' if c.primary else ' (secondary, uncorrected: exploratory)'}; the study resolves "
                f"{detect:.2f} pp with 80 % power." if r.sd > 0 else
                f"Does {name} raise {prereg.endpoint_text} over the baseline? {word}: {ci}, the same in every "
                "seed.")


def _noninferiority(prereg: PreRegistration, j: Judged, name: str, level: float, ci: str, p_text: str) -> None:
    """A non-inferiority contrast's verdict, answer and power."""
    c, r, alpha = j.contrast, j.result, prereg.alpha
    margin = c.margin_pp
    detect = stats.detectable_effect(r.sd, r.n, level, sides=1)
    j.power = (f"lower bound of the {100 * (1 - 2 * alpha):.0f} % interval {j.ni_low:+.2f} pp against the margin "
               f"-{margin:g} pp; power to show non-inferiority at this margin if the true change is 0: "
               f"{100 * stats.power(margin, r.sd, r.n, level, sides=1):.0f} %; a margin of {detect:.2f} pp would have "
               f"80 % power" if r.sd > 0 else "exact: the same change in every seed")
    if j.p_adjusted < alpha:
        j.verdict = "shown: non-inferior"
        word = "Yes"
    elif r.high < -margin:
        j.verdict = "opposite: inferior by more than the margin"
        word = "No, it loses more than the margin"
    else:
        j.verdict = "not shown: a loss beyond the margin is not excluded"
        word = "Not shown"
    j.answer = (f"Is {name} no worse than the baseline on {prereg.endpoint_text} (margin {margin:g} pp)? {word}: "
                f"{ci}, the {100 * (1 - 2 * alpha):.0f} % interval's lower end is {j.ni_low:+.2f} pp, {p_text}"
                f"{'' if c.primary else ' (secondary, uncorrected: exploratory)'}.")


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def confirmatory_table(prereg: PreRegistration, judged: List[Judged], point: Endpoint) -> Table:
    rows = []
    for j in judged:
        c, r = j.contrast, j.result
        rows.append({
            "contrast": c.label, "role": "primary" if c.primary else "secondary", "test": c.test,
            "margin_pp": c.margin_pp, "group": None if j.group is None else j.group["label"],
            "seeds_planned": prereg.seeds, "seeds_paired": len(j.seeds), "seeds": ",".join(map(str, j.seeds)),
            "endpoint": point.key, "mean_pp": r.mean if r else math.nan, "sd_pp": r.sd if r else math.nan,
            "ci_low_pp": r.low if r else math.nan, "ci_high_pp": r.high if r else math.nan,
            "ni_low_pp": j.ni_low, "p": r.p if r else math.nan, "p_adjusted": j.p_adjusted,
            "correction": prereg.correction if c.primary else "none (exploratory)", "alpha": prereg.alpha,
            "verdict": j.verdict, "power": j.power,
        })
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "contrast": data["contrast"], "role": data["role"],
        "test": [t if pd.isna(m) else f"{t} (margin {m:g} pp)" for t, m in zip(data["test"], data["margin_pp"])],
        "seeds (planned)": [f"{n} ({p})" for n, p in zip(data["seeds_paired"], data["seeds_planned"])],
        f"Δ {point.label} (pp), 95 % CI": [
            "" if pd.isna(m) else f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            for m, lo, hi in zip(data["mean_pp"], data["ci_low_pp"], data["ci_high_pp"])],
        "s.d. (pp)": data["sd_pp"].map(lambda v: num(v, 2)),
        "p": data["p"].map(_p), "adjusted p": data["p_adjusted"].map(_p),
        "verdict": data["verdict"], "power": data["power"],
    })
    notes = [f"Endpoint: {point.text}, per seed, against the baseline with the same settings and seed. Superiority: "
             "two-sided paired t-test; non-inferiority: one-sided paired t-test of the change against -margin "
             f"(equivalently, the lower end of the {100 * (1 - 2 * prereg.alpha):.0f} % interval above -margin). "
             f"Adjusted p: {CORRECTION[prereg.correction]} over the {sum(c.primary for c in prereg.contrasts)} primary "
             "contrasts; "
             f"a verdict is shown when it is below alpha = {prereg.alpha:g}. Secondary contrasts are uncorrected and "
             "exploratory. Power: at the strictest level the contrast faces (alpha/m for the primary contrasts under "
             "Holm or Bonferroni), with the observed s.d. of the per-seed differences and the seeds that paired."]
    name, title = ("prereg_contrasts", "Pre-registered contrasts") if not prereg.arm else (
        f"prereg_contrasts_{prereg.arm.lower()}", f"Pre-registered contrasts, arm {prereg.arm} ({prereg.experiment})")
    return Table(name, title, data, display, notes)
