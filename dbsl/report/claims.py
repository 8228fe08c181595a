"""The paper's claims set against the runs: per experiment and scheme, the change against the baseline over seeds
with a 95 % confidence interval, and whether the runs show the claimed effect, no resolvable effect, or the opposite.

The claims (paper v2, Section 5 and Table 8; see ../shared/paper.md):

* DBSL: with n_S small-batch workers, test accuracy goes up while an epoch costs at most k times the baseline's.
* CPL: training time goes down without an accuracy loss (CIFAR-100: -10.1 % time, 68.0 % top-1 either way).
* hybrid: both at once, accuracy up and time down.

Runs with the same seed share the initial model and the data subset, so each scheme is compared with its baseline
seed by seed: the change is the mean of the per-seed differences and its interval the paired Student-t interval
(Welch's interval when fewer than two seeds pair up). An effect counts as shown when the whole interval lies on the
claimed side of zero, as the opposite when it lies on the other side, and as not resolved otherwise. Every accuracy
verdict carries its power: the change the paired t-test would detect with 80 % power at the observed spread.

Time is judged on the measured clock where the records have one (summary.json ``measured_time``: the same ASP schedule
replayed with the measured mini-epoch durations), with the modelled clock beside it; older records are judged on the
time model's virtual clock (modelled), and the distributed executor's on its real training time (wall). Measured
seconds depend on the machine, so on the measured clock a seed counts only where its two runs ran on the same CPU
(summary.json ``environment.cpu``); the modelled clock is the same on every machine and keeps every seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import stats as paired_stats
from .collect import RunSet, by_seed as _by_seed, other_cpu_seeds
from .endpoint import Endpoint, endpoint
from .paper import comparison
from .render import Table, num, slug

CONFIDENCE = 0.95
# scheme -> (accuracy claim, time claim); "higher"/"lower" are directions, "not lower" tolerates no change,
# "within k" is the time budget of Eq. 8
CLAIMS = {"dbsl": ("higher", "within k"), "cpl": ("not lower", "lower"), "hybrid": ("higher", "lower")}
CLAIM_TEXT = {
    "dbsl": "dual batches raise accuracy at most k times the baseline's time",
    "cpl": "cyclic progressive learning cuts training time without losing accuracy",
    "hybrid": "the hybrid raises accuracy and cuts training time",
}
SLACK_PCT = 0.5  # "within k": the time may exceed (k-1) by this many per cent (B_S is rounded, Eq. 8)
CLOCK_COLUMNS = {"modelled": "modelled_time_s", "measured": "measured_time_s", "wall": "wall_time_s"}


@dataclass
class Change:
    """The change of one metric against the baseline over seeds."""

    mean: float
    low: float
    high: float
    pairs: int  # seeds compared pairwise (0: unpaired, Welch)
    sd: float = math.nan  # s.d. of the per-seed differences (paired only)

    @property
    def resolved(self) -> bool:
        return not math.isnan(self.low)

    def direction(self) -> str:
        if not self.resolved:
            return "one seed: no interval"
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no resolved change"

    def detectable(self, alpha: float = 1 - CONFIDENCE) -> float:
        """The change a two-sided paired t-test at ``alpha`` detects with 80 % power at this spread and n."""
        return paired_stats.detectable_effect(self.sd, self.pairs, alpha) if self.pairs >= 2 else math.nan


def paired_change(ours: pd.Series, base: pd.Series, relative: bool = False) -> Change:
    """Change of ``ours`` against ``base`` (both indexed by seed): differences (or ratios - 1, in per cent) seed by
    seed with a paired t interval; Welch's interval on the two samples when fewer than two seeds pair up."""
    ours, base = ours.dropna(), base.dropna()
    common = ours.index.intersection(base.index)
    if len(common) >= 2:
        diffs = ((ours[common] / base[common] - 1.0) * 100.0) if relative else (ours[common] - base[common])
        p = paired_stats.paired(diffs.to_numpy(float), CONFIDENCE)
        return Change(p.mean, p.low, p.high, p.n, p.sd)
    a, b = ours.to_numpy(float), base.to_numpy(float)
    if relative:  # both as per cent of the baseline's mean
        a, b = (a / b.mean() - 1.0) * 100.0, (b / b.mean() - 1.0) * 100.0
    mean = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return Change(mean, math.nan, math.nan, 0)
    if np.ptp(a) == 0.0 and np.ptp(b) == 0.0:  # both constant: the difference is exact
        return Change(mean, mean, mean, 0)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return Change(mean, float(ci.low), float(ci.high), 0)


def accuracy_verdict(claim: str, change: Change) -> str:
    found = change.direction()
    if not change.resolved:
        return "not tested (one seed)"
    if claim == "higher":
        return {"higher": "shown", "lower": "opposite"}.get(found, "not shown (no resolved change)")
    # "not lower": no loss is what is claimed; an interval that holds zero does not contradict it, nor show it
    return {"lower": "opposite (accuracy lost)", "higher": "shown (higher)"}.get(
        found, f"not contradicted (no resolved change; the interval allows {change.low:+.2f})")


def time_verdict(claim: str, change: Change, k: float, slack_pct: float = SLACK_PCT) -> str:
    """A time claim's verdict; "within k": the whole interval inside the budget (k-1) + slack_pct (a single run, or an
    exact clock: its mean). A pre-registration that states the budget without slack judges with slack_pct = 0."""
    if claim == "within k":
        budget = (k - 1.0) * 100.0
        low, high = (change.low, change.high) if change.resolved else (change.mean, change.mean)
        if high <= budget + slack_pct:
            return "shown"
        if low > budget + slack_pct:
            return f"opposite (over the {budget:+.1f} % budget)"
        return f"not shown (the interval crosses the {budget:+.1f} % budget)"
    found = change.direction()
    if not change.resolved:
        found = "lower" if change.mean < 0 else "higher"
    return {"lower": "shown", "higher": "opposite"}.get(found, "not shown (no resolved change)")


def clock_of(executor: str, frames: list[pd.DataFrame]) -> str:
    """The clock a time claim is judged on: the distributed executor's real time (wall), else the measured clock
    when every run has one, else the time model's virtual clock (modelled)."""
    if executor == "distributed":
        return "wall"
    runs = pd.concat(frames)
    if "measured_time_s" in runs and len(runs) and runs["measured_time_s"].notna().all():
        return "measured"
    return "modelled"


def clock_by_seed(clock: str, ours_runs: pd.DataFrame, base_runs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The judged clock per seed of a scheme and of its baseline; on the measured clock, seeds whose two runs ran
    on different CPUs are left out (NaN)."""
    column = CLOCK_COLUMNS[clock]
    ours, base = _by_seed(ours_runs, ours_runs[column]), _by_seed(base_runs, base_runs[column])
    if clock == "measured":
        ours[ours.index.isin(other_cpu_seeds(ours_runs, base_runs))] = math.nan
    return ours, base


def seed_deltas(runset: RunSet, groups: pd.DataFrame, point: Endpoint | None = None) -> pd.DataFrame:
    """Per scheme group with a baseline and per seed both ran: the endpoint's change (pp) and the change of the
    judged clock (per cent), for the forest plot's per-seed points."""
    point = point or endpoint(runset)
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    rows = []
    for g, ours_runs, base_runs in _pairs(runs, groups):
        clock = clock_of(g["executor"], [ours_runs, base_runs])
        ours, base = _by_seed(ours_runs, point.values), _by_seed(base_runs, point.values)
        ours_t, base_t = clock_by_seed(clock, ours_runs, base_runs)
        for seed in sorted(ours.index.intersection(base.index)):
            rows.append({"experiment": g["experiment"], "label": g["label"], "scheme": g["scheme"],
                         "num_small": g["num_small"], "seed": seed, "delta_top1_pp": ours[seed] - base[seed],
                         "delta_time_pct": (ours_t[seed] / base_t[seed] - 1.0) * 100.0, "clock": clock})
    return pd.DataFrame(rows)


def _pairs(runs: pd.DataFrame, groups: pd.DataFrame):
    """(group, its runs, its baseline's runs) for every scheme group with a claim and a baseline."""
    by_group = groups.set_index("group")
    for _, g in groups.iterrows():
        if g["scheme"] not in CLAIMS or pd.isna(g["baseline_group"]) or g["group"] == g["baseline_group"]:
            continue
        yield g, runs.loc[g["run_dirs"]], runs.loc[by_group.loc[g["baseline_group"], "run_dirs"]]


def claim_rows(runset: RunSet, groups: pd.DataFrame, point: Endpoint | None = None,
               slack_pct: float = SLACK_PCT) -> pd.DataFrame:
    """One row per scheme group that has a baseline: the paired changes of the endpoint (best top-1 unless given) and
    of the time on the judged clock (and on the modelled clock beside it), the verdicts, the power, and the paper's
    change for the matching CIFAR-100 row (where there is one)."""
    point = point or endpoint(runset)
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    paper = comparison(groups)
    paper = paper[paper["table"].isin([8, 10])] if "group" in paper else pd.DataFrame(columns=["group"])
    key = point.key
    rows = []
    for g, ours_runs, base_runs in _pairs(runs, groups):
        top1 = paired_change(_by_seed(ours_runs, point.values), _by_seed(base_runs, point.values))
        clock = clock_of(g["executor"], [ours_runs, base_runs])
        time = paired_change(*clock_by_seed(clock, ours_runs, base_runs), relative=True)
        other_cpu = other_cpu_seeds(ours_runs, base_runs) if clock == "measured" else []
        modelled = paired_change(_by_seed(ours_runs, ours_runs["modelled_time_s"]),
                                 _by_seed(base_runs, base_runs["modelled_time_s"]), relative=True)
        measurement = sorted(set(pd.concat([ours_runs, base_runs]).get("measured_clock", pd.Series()).dropna()))
        acc_claim, time_claim = CLAIMS[g["scheme"]]
        k = float(g["extra_time_ratio"]) if g["num_small"] else 1.0
        published = paper[paper["group"] == g["group"]][:1]
        rows.append({
            "experiment": g["experiment"], "label": g["label"], "scheme": g["scheme"], "num_small": g["num_small"],
            "extra_time_ratio": k, "seeds_paired": top1.pairs, "runs": g["runs"], "endpoint": key,
            "accuracy_claim": acc_claim, f"delta_{key}_pp": top1.mean, f"delta_{key}_low": top1.low,
            f"delta_{key}_high": top1.high, f"delta_{key}_sd": top1.sd,
            "detectable_pp": top1.detectable(), "accuracy_verdict": accuracy_verdict(acc_claim, top1),
            "time_claim": time_claim, "clock": clock,
            "measured_clock": "/".join(measurement) if clock == "measured" else "",
            "time_seeds_paired": time.pairs, "time_seeds_other_cpu": ",".join(map(str, other_cpu)),
            "delta_time_pct": time.mean, "delta_time_low": time.low,
            "delta_time_high": time.high, "time_verdict": time_verdict(time_claim, time, k, slack_pct),
            "delta_modelled_time_pct": modelled.mean,
            "paper_delta_top1_pp": published["paper_delta_top1_pp"].iloc[0] if len(published) else math.nan,
            "paper_delta_time_pct": published["paper_delta_time_pct"].iloc[0] if len(published) else math.nan,
            "paper_table": published["table"].iloc[0] if len(published) else math.nan,
        })
    return pd.DataFrame(rows)


def interval(mean, low, high, digits: int, unit: str) -> str:
    if math.isnan(low):
        return f"{mean:+.{digits}f}{unit}"
    if low == high:
        return f"{mean:+.{digits}f}{unit} (same in every seed)"
    return f"{mean:+.{digits}f}{unit} [{low:+.{digits}f}, {high:+.{digits}f}]"


def power_text(detectable: float, low: float, high: float) -> str:
    """The power statement of one accuracy verdict."""
    if math.isnan(detectable):
        return "no power (fewer than 2 paired seeds)" if math.isnan(low) else "exact (no spread)"
    return f"±{(high - low) / 2:.2f} pp; 80 % power for {detectable:.2f} pp"


def clock_name(clock: str, measurement: str = "") -> str:
    return {"modelled": "modelled", "wall": "wall-clock",
            "measured": f"measured ({measurement.upper() if measurement == 'cpu' else measurement} seconds)"
            if measurement else "measured"}.get(clock, clock)


def claims_tables(runset: RunSet, groups: pd.DataFrame, point: Endpoint | None = None) -> list[Table]:
    """Per experiment, the claims table; its notes state each claim and what the runs show, in words."""
    point = point or endpoint(runset)
    data = claim_rows(runset, groups, point) if not groups.empty else pd.DataFrame()
    key = point.key
    tables = []
    for experiment, part in (data.groupby("experiment", sort=True) if not data.empty else []):
        part = part.reset_index(drop=True)
        display = pd.DataFrame({
            "scheme": part["scheme"], "n_S": part["num_small"],
            "k": [f"{k:g}" if n else "-" for k, n in zip(part["extra_time_ratio"], part["num_small"])],
            "seeds": part["runs"],
            f"Δ {point.label} (pp), 95 % CI": [interval(m, lo, hi, 2, "") for m, lo, hi in
                                              zip(part[f"delta_{key}_pp"], part[f"delta_{key}_low"],
                                                  part[f"delta_{key}_high"])],
            "accuracy claim": part["accuracy_claim"], "accuracy: this run": part["accuracy_verdict"],
            "power (half-width; detectable)": [power_text(d, lo, hi) for d, lo, hi in
                                               zip(part["detectable_pp"], part[f"delta_{key}_low"],
                                                   part[f"delta_{key}_high"])],
            "Δ time (%)": [interval(m, lo, hi, 1, "") for m, lo, hi in
                           zip(part["delta_time_pct"], part["delta_time_low"], part["delta_time_high"])],
            "clock": [clock_name(c, m) for c, m in zip(part["clock"], part["measured_clock"])],
        })
        if (part["clock"] != "modelled").any():
            display["Δ modelled time (%)"] = part["delta_modelled_time_pct"].map(lambda v: num(v, 1, signed=True))
        display["time claim"] = part["time_claim"]
        display["time: this run"] = part["time_verdict"]
        display["paper Δ top-1 (pp)"] = part["paper_delta_top1_pp"].map(lambda v: num(v, 1, signed=True))
        display["paper Δ time (%)"] = part["paper_delta_time_pct"].map(lambda v: num(v, 1, signed=True))
        notes = [f"Changes of the {point.text} against the baseline (no small batches, no CPL), seed by seed, with "
                 f"a {CONFIDENCE * 100:.0f} % paired Student-t interval over seeds. Shown: the interval lies on the "
                 "claimed side of zero; opposite: on the other side; not shown: the interval holds zero, so these "
                 "seeds cannot tell the effect from seed-to-seed noise; not contradicted: no loss is claimed and none "
                 "is resolved. Power: the interval's half-width, and the change a two-sided paired t-test at 5 % "
                 "would detect with 80 % power at the observed spread of the per-seed differences. 'within k': the "
                 f"time exceeds the baseline's by at most (k-1) (+{SLACK_PCT} % for the rounding of B_S), over the "
                 "whole interval. Clock: the measured clock where the records have one (the ASP schedule replayed with "
                 "the measured mini-epoch seconds; the modelled change beside it), else the time model's virtual "
                 "clock (modelled) on the simulated executor, the measured training time (wall) on the distributed "
                 "one. Paper columns: the matching CIFAR-100/ImageNet row of Table 8/10 against DBL n_S=0 (best top-1 "
                 "over all commits, server wall-clock time)."]
        notes += [_summary(scheme, rows, point) for scheme, rows in part.groupby("scheme", sort=False)]
        notes += [f"Measured clock of {r.label}: seed(s) {r.time_seeds_other_cpu} left out of Δ time (its run and the "
                  f"baseline's ran on different CPUs, whose seconds do not compare); {r.time_seeds_paired} seeds "
                  "paired. The modelled change keeps every seed."
                  for r in part.itertuples() if r.time_seeds_other_cpu]
        tables.append(Table(f"claims_{slug(experiment)}", f"The paper's claims against these runs: {experiment}",
                            part, display, notes))
    return tables


def _clock(rows: pd.DataFrame) -> str:
    names = sorted({clock_name(c, m) for c, m in zip(rows["clock"], rows["measured_clock"])})
    return "/".join(names)


def _summary(scheme: str, rows: pd.DataFrame, point: Endpoint) -> str:
    """One plain sentence per scheme: the claim, the paper's numbers, what these runs show."""
    def span(column, digits, unit):
        values = rows[column].dropna()
        if values.empty:
            return "n/a"
        lo, hi = values.min(), values.max()
        return f"{lo:+.{digits}f}{unit}" if math.isclose(lo, hi) else f"{lo:+.{digits}f} to {hi:+.{digits}f}{unit}"

    n_s = ", ".join(str(int(n)) for n in rows["num_small"])
    paper = (f"The paper (Table {int(rows['paper_table'].dropna().iloc[0])}, same n_S) reports "
             f"{span('paper_delta_top1_pp', 1, ' pp')} top-1 and {span('paper_delta_time_pct', 1, ' %')} time. "
             if rows["paper_table"].notna().any() else "")
    acc = rows["accuracy_verdict"].str.split(" [(]").str[0].value_counts()
    tim = rows["time_verdict"].str.split(" [(]").str[0].value_counts()
    tally = lambda counts: ", ".join(f"{v} of {len(rows)} {k}" for k, v in counts.items())  # noqa: E731
    beside = (f" (modelled: {span('delta_modelled_time_pct', 1, ' %')})" if (rows["clock"] != "modelled").any()
              else "")
    return (f"**{scheme}** (n_S = {n_s}). Claim: {CLAIM_TEXT[scheme]}. {paper}These runs: "
            f"{span(f'delta_{point.key}_pp', 2, ' pp')} {point.label} (accuracy claim: {tally(acc)}) and "
            f"{span('delta_time_pct', 1, ' %')} {_clock(rows)} time{beside} (time claim: {tally(tim)}).")
