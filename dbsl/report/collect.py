"""Find the run records under result folders, load them into one DataFrame, and group runs that differ only by seed.

A run is identified by its resolved config.yaml (or, without one, its overrides) by the rule of
:mod:`dbsl.identity`. Runs with the same identity form a group (mean, standard deviation and count over seeds).
Groups of one experiment (preset name and dataset) that differ only by the scheme's own keys share a baseline: the
group with neither switch (no small-batch workers, no CPL).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import pandas as pd
import yaml

from ..errors import UserError
from ..identity import SCHEME_KEYS, flatten, has_prefix, identity_config, identity_hash
from ..record import STATUSES, commit_ranges, find_runs, read_metric_rows

SCHEME_ORDER = {"baseline": 0, "dbsl": 1, "cpl": 2, "hybrid": 3}
# metrics aggregated over seeds: column in the runs table -> (summary section, field, scale)
METRICS = {
    "best_top1_pct": ("best", "test_top1", 100.0),
    "best_loss": ("best", "test_loss", 1.0),
    "final_top1_pct": ("final", "test_top1", 100.0),
    "final_loss": ("final", "test_loss", 1.0),
    "modelled_time_s": (None, "modelled_time", 1.0),
    "wall_time_s": (None, "wall_time", 1.0),
    "measured_time_s": (None, "measured_time", 1.0),  # the measured clock (newer records only; NaN before)
}
# ... and the paper-comparable test loss (cross-entropy plus the L2 term, as Keras's evaluate): NaN in older records
OPTIONAL_METRICS = {
    "best_loss_l2": ("best", "test_loss_l2", 1.0),
    "final_loss_l2": ("final", "test_loss_l2", 1.0),
}
REQUIRED = ("scheme", "dataset", "num_small", "best", "final", "modelled_time", "wall_time")


class ReportError(UserError):
    """Nothing to report (no folder, no runs); the message says what to pass or run."""


@dataclass
class RunSet:
    runs: pd.DataFrame  # one row per record found: included in the numbers or not, with the reason
    configs: Dict[str, dict] = field(default_factory=dict)  # run_dir -> flattened config (identity keys only)
    roots: List[Path] = field(default_factory=list)


def find_records(roots: Sequence[Path | str]) -> List[Path]:
    """Every run directory (one holding a summary.json) under the roots, each once."""
    seen: Dict[Path, Path] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            raise ReportError(f"{root}: no such folder; pass the folder(s) holding run records, e.g. "
                              "`python -m dbsl.report results`")
        for run_dir in find_runs(root):
            seen.setdefault(run_dir.resolve(), run_dir)
    return sorted(seen.values())


def _run_config(run_dir: Path, summary: dict) -> dict:
    path = run_dir / "config.yaml"
    if path.exists():
        tree = yaml.safe_load(path.read_text())
        if not isinstance(tree, dict):
            raise ValueError("config.yaml is not a mapping")
        return flatten(tree)
    pairs = (o.lstrip("+").split("=", 1) for o in summary.get("overrides") or [] if "=" in o)
    return {k: v for k, v in pairs}


def _commits_recorded(run_dir: Path) -> tuple[List[int] | None, str | None]:
    """The commit numbers of a run's metrics.csv rows (None when the file is missing or unreadable), and the first
    cell that is not a number (every column is numeric: a cell 'abc' is an edited or damaged file, not a value)."""
    try:
        rows = read_metric_rows(run_dir / "metrics.csv")
        commits = [int(r["commit"]) for r in rows]
    except (OSError, ValueError, UnicodeDecodeError):
        return None, None
    for r in rows:
        for column, cell in r.items():
            if cell in ("", None) or column is None:
                continue
            try:
                float(cell)
            except (TypeError, ValueError):
                return commits, f"metrics.csv holds {cell!r} in column {column} at commit {r['commit']}, not a number"
    return commits, None


def _row_gaps(commits: List[int] | None, total) -> str | None:
    """Why a completed run's metrics.csv does not hold commits 0..total-1 exactly once each, or None."""
    if not isinstance(total, int):
        return None
    if commits is None:
        return "metrics.csv is missing or unreadable"
    if commits == list(range(total)):
        return None
    missing = sorted(set(range(total)) - set(commits))
    what = f"lacks the rows of commits {commit_ranges(missing)}" if missing else "repeats rows or holds extra ones"
    return f"metrics.csv {what} ({len(commits)} rows for {total} commits)"


def _cpu(summary: dict) -> str | None:
    """The CPU a run's measured seconds came from (summary.json ``environment.cpu``; older records lack it)."""
    environment = summary.get("environment")
    return environment.get("cpu") if isinstance(environment, dict) else None


# a record that did not finish: what the report calls it, and how it stopped
UNFINISHED = {"running": ("incomplete", "still running, or killed: "), "interrupted": ("interrupted (Ctrl-C)", "")}


def load_run(run_dir: Path) -> tuple[dict, dict | None]:
    """(row of the runs table, flattened config or None); a bad record gives status 'malformed' and the reason."""
    row = {"run_dir": str(run_dir), "status": "malformed", "included": False, "note": ""}
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        row["note"] = f"summary.json is unreadable or not valid JSON ({err})"
        return row, None
    if not isinstance(summary, dict) or summary.get("status") not in STATUSES:
        row["note"] = f"summary.json has no status among {', '.join(STATUSES)}"
        return row, None
    try:
        config = _run_config(run_dir, summary)
    except (OSError, ValueError, yaml.YAMLError) as err:
        row["note"] = f"config.yaml is unreadable ({type(err).__name__}: {str(err).splitlines()[0]})"
        return row, None
    status = summary["status"]
    row.update(_settings(summary))
    commits, bad_cell = _commits_recorded(run_dir)
    row["commits_recorded"] = None if commits is None else len(commits)
    if status in ("failed", "diverged", "pruned"):
        row["note"] = f"{status}: {summary.get('error', 'no error recorded')}"
        return row, config
    if status in UNFINISHED:
        word, how = UNFINISHED[status]
        row["note"] = (f"{word}: {row['commits_recorded'] or 0} of {row['total_commits']} commits recorded "
                       f"({how}the same command resumes it)")
        return row, config
    lacking = _lacking(summary)
    if lacking:
        row.update(status="malformed", note=f"completed, but summary.json lacks {', '.join(lacking)}")
        return row, None
    gaps = _row_gaps(commits, summary.get("total_commits")) or bad_cell
    if gaps:  # the summary would claim more than the record holds
        row.update(status="malformed", note=f"completed, but {gaps}; not averaged (overwrite=true reruns it)")
        return row, config
    for column, (sec, key, scale) in METRICS.items():
        value = (summary[sec] if sec else summary).get(key)
        row[column] = float(value) * scale if isinstance(value, (int, float)) else math.nan
    for column, (sec, key, scale) in OPTIONAL_METRICS.items():
        value = summary[sec].get(key) if isinstance(summary.get(sec), dict) else None
        row[column] = float(value) * scale if isinstance(value, (int, float)) else math.nan
    row["included"] = True
    return row, config


def _settings(summary: dict) -> dict:
    """What a run was (scheme, n_S, k, workers, seed, ...) and where it ran, as its summary.json says."""
    return dict(status=summary["status"], name=summary.get("name", "default"), dataset=summary.get("dataset"),
                scheme=summary.get("scheme"), cyclic=bool(summary.get("cyclic")),
                num_small=summary.get("num_small"), extra_time_ratio=summary.get("extra_time_ratio"),
                update_factor=summary.get("update_factor"), merge_rule=summary.get("merge_rule"),
                sync=summary.get("sync"), num_workers=summary.get("num_workers"), hardware=summary.get("hardware"),
                executor=summary.get("executor"), seed=summary.get("seed"),
                total_commits=summary.get("total_commits"),
                dataset_size=(summary.get("plan") or {}).get("dataset_size"),
                best_commit=(summary.get("best") or {}).get("commit"), measured_clock=summary.get("measured_clock"),
                cpu=_cpu(summary), git_commit=summary.get("git_commit"), finished=summary.get("finished"))


def _lacking(summary: dict) -> List[str]:
    """What a completed run's summary.json lacks of the fields the numbers need."""
    lacking = [k for k in REQUIRED if summary.get(k) is None]
    lacking += [f"{sec}.{key}" for sec, key, _ in METRICS.values()
                if isinstance(summary.get(sec), dict) and not isinstance(summary[sec].get(key), (int, float))]
    if summary.get("num_small") is not None and not isinstance(summary["num_small"], int):
        lacking.append("an integer num_small")
    if not isinstance(summary.get("extra_time_ratio"), (int, float)):
        lacking.append("a numeric extra_time_ratio")
    return lacking


def load_runs(roots: Sequence[Path | str]) -> RunSet:
    """All records under ``roots`` as one DataFrame (raises ReportError when there is none)."""
    run_dirs = find_records(roots)
    if not run_dirs:
        raise ReportError(f"no run records (summary.json) under {', '.join(map(str, roots))}; run some first, e.g. "
                          "`python -m dbsl.run experiment=smoke scheme=hybrid`, or pass the folder that holds them")
    rows, configs = [], {}
    for run_dir in run_dirs:
        row, config = load_run(run_dir)
        if config is not None:
            config = identity_config(config, row.get("num_small"))
            row["group"] = identity_hash(config)
            row["setup"] = identity_hash(config, SCHEME_KEYS)
            configs[str(run_dir)] = config
        rows.append(row)
    runs = pd.DataFrame(rows)
    for column in (*METRICS, *OPTIONAL_METRICS):
        if column not in runs:
            runs[column] = math.nan
    _count_each_run_once(runs)
    return RunSet(runs=runs, configs=configs, roots=[Path(r) for r in roots])


SAME_RUN = ("cpu", "git_commit", "status", *METRICS)  # what two copies of one run must share to be identical


def _count_each_run_once(runs: pd.DataFrame) -> None:
    """The same run (identity and seed) found in several folders counts once: identical copies silently; copies that
    differ (another CPU, commit, status or result) are a conflict, named in each left-out copy's note: the newest
    completed copy counts."""
    if runs.empty or "group" not in runs:
        return
    included = runs[runs["included"]]
    for _, copies in included.groupby(["group", "seed"], dropna=False):
        if len(copies) < 2:
            continue
        kept = copies.sort_values(["finished", "run_dir"], na_position="first").index[-1]
        for i in copies.index.drop(kept):
            differs = [c for c in SAME_RUN if c in runs and not _same(runs.at[i, c], runs.at[kept, c])]
            runs.at[i, "included"] = False
            runs.at[i, "note"] = (f"the same run (config and seed) as {runs.at[kept, 'run_dir']}, " + (
                "an identical copy: counted once" if not differs else
                f"but it differs in {', '.join(differs)}: a conflict; the newest completed copy, that one, counts"))


def _same(a, b) -> bool:
    both_missing = (a is None or (isinstance(a, float) and math.isnan(a))) and \
        (b is None or (isinstance(b, float) and math.isnan(b)))
    return both_missing or a == b


# -- groups ----------------------------------------------------------------------------------------------------
def group_label(row) -> str:
    label = f"{row['scheme']} n_S={row['num_small']}"
    if row["num_small"]:
        label += f" k={row['extra_time_ratio']:g}"
        if row["update_factor"] != "linear":
            label += f" f={row['update_factor']}"
    extra = ", ".join(f"{k}={_short(v)}" for k, v in (row.get("varying") or {}).items())
    return f"{label} ({extra})" if extra else label


def _short(value) -> str:
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value)


def _varying(configs: List[dict]) -> List[str]:
    """Keys outside the scheme's own whose values differ between the given configs."""
    keys = sorted({k for c in configs for k in c if not has_prefix(k, SCHEME_KEYS)})
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def is_reference(num_workers) -> bool:
    """A reference run: one worker (ps.num_workers = 1), the ceiling the PS runs are measured against; it is not one
    of the paper's n-worker configurations. What it is depends on its merge rule: :func:`reference_name`."""
    return num_workers is not None and not pd.isna(num_workers) and int(num_workers) == 1


def reference_name(merge_rule) -> str:
    """What a one-worker run is: with ``ps.merge_rule=replace`` plain SGD in one process (the server keeps the
    pushed weights); with an averaging rule a one-worker parameter server, whose every push is averaged with the
    server's copy (journal: 50/50; the authors' w2s0 runs), which is not plain SGD."""
    if merge_rule == "replace":
        return "one-process SGD (ps.merge_rule=replace)"
    return f"one-worker parameter server ({merge_rule} merge: each push averaged with the server's copy)"


def group_runs(runset: RunSet) -> pd.DataFrame:
    """One row per group of included runs: mean/std/count over seeds and the change against the baseline group."""
    runs = runset.runs[runset.runs["included"]]
    if runs.empty:
        return pd.DataFrame()
    fixed = ["setup", "name", "dataset", "scheme", "cyclic", "num_small", "extra_time_ratio",
             "update_factor", "merge_rule", "sync", "num_workers", "hardware", "executor"]
    grouped = runs.groupby("group", sort=False)
    groups = grouped[fixed].first()
    groups["group"] = groups.index
    groups["num_small"] = groups["num_small"].astype(int)  # a completed summary always has it
    groups.index.name = None
    groups["runs"] = grouped.size()
    groups["seeds"] = grouped["seed"].agg(lambda s: ",".join(str(int(v)) if float(v).is_integer() else str(v)
                                                             for v in sorted(s)))
    groups["run_dirs"] = grouped["run_dir"].agg(list)
    for column in (*METRICS, *OPTIONAL_METRICS):
        groups[f"{column}_mean"] = grouped[column].mean()
        groups[f"{column}_std"] = grouped[column].std()  # sample s.d. (ddof 1); NaN for a single run
    groups["experiment"] = groups["name"].astype(str) + " / " + groups["dataset"].astype(str)
    config_of = {g: runset.configs[dirs[0]] for g, dirs in groups["run_dirs"].items()}
    groups["varying"] = None
    for _, members in groups.groupby("experiment"):
        keys = _varying([config_of[g] for g in members.index])
        for g in members.index:
            groups.at[g, "varying"] = {k: config_of[g].get(k) for k in keys}
    groups["label"] = groups.apply(group_label, axis=1)
    _compare_to_baseline(groups, runs)
    groups["_order"] = groups["scheme"].map(SCHEME_ORDER).fillna(len(SCHEME_ORDER))
    groups = groups.sort_values(["experiment", "_order", "num_small", "extra_time_ratio", "label"])
    return groups.drop(columns="_order").reset_index(drop=True)


def by_seed(frame: pd.DataFrame, values: pd.Series) -> pd.Series:
    """``values`` (indexed by run_dir) of the runs in ``frame`` (indexed by run_dir), indexed by their seeds."""
    return pd.Series(values.reindex(frame.index).to_numpy(float), index=frame["seed"].to_numpy())


def other_cpu_seeds(ours_runs: pd.DataFrame, base_runs: pd.DataFrame) -> list:
    """Seeds whose run and baseline run recorded different CPUs: their measured seconds are not comparable."""
    if "cpu" not in ours_runs or "cpu" not in base_runs:
        return []
    ours = pd.Series(ours_runs["cpu"].to_numpy(), index=ours_runs["seed"].to_numpy()).dropna()
    base = pd.Series(base_runs["cpu"].to_numpy(), index=base_runs["seed"].to_numpy()).dropna()
    return sorted(s for s in ours.index.intersection(base.index) if ours[s] != base[s])


def paired_time_change(ours_runs: pd.DataFrame, base_runs: pd.DataFrame, column: str) -> float:
    """A machine-measured time's change against the baseline, in per cent: the mean over seeds of each seed's
    ratio - 1, counting only seeds whose two runs ran on the same CPU (seconds of two CPUs do not compare); the
    ratio of the means when no seed pairs so."""
    ours, base = by_seed(ours_runs, ours_runs[column]).dropna(), by_seed(base_runs, base_runs[column]).dropna()
    common = ours.index.intersection(base.index).difference(other_cpu_seeds(ours_runs, base_runs))
    if len(common):
        return float(((ours[common] / base[common] - 1.0) * 100.0).mean())
    return (ours.mean() / base.mean() - 1.0) * 100.0 if len(ours) and len(base) else math.nan


def _compare_to_baseline(groups: pd.DataFrame, runs: pd.DataFrame) -> None:
    """Per group: its experiment's baseline group with the same setup (no small batches, no CPL) and the changes:
    top-1 in percentage points, times in per cent (the machine-measured clocks paired by seed within one CPU,
    :func:`paired_time_change`; the modelled clock, the same on every machine, as the ratio of the means)."""
    plain = groups[(groups["num_small"] == 0) & ~groups["cyclic"].astype(bool)]
    baseline_of = {}
    for setup, candidates in plain.groupby("setup"):
        ranked = candidates.assign(_pref=candidates["scheme"] != "baseline").sort_values(["_pref", "group"])
        baseline_of[setup] = ranked.index[0]
    groups["baseline_group"] = groups["setup"].map(baseline_of)
    for column, kind in (("best_top1_pct", "pp"), ("final_top1_pct", "pp"), ("modelled_time_s", "pct")):
        base = groups["baseline_group"].map(groups[f"{column}_mean"])
        mean = groups[f"{column}_mean"]
        name = column.removesuffix("_pct").removesuffix("_s")
        groups[f"delta_{name}_{kind}"] = mean - base if kind == "pp" else (mean / base - 1.0) * 100.0
    by_dir = runs.set_index("run_dir")
    for column in ("wall_time_s", "measured_time_s"):
        groups[f"delta_{column.removesuffix('_s')}_pct"] = [
            math.nan if pd.isna(b) else paired_time_change(by_dir.loc[dirs], by_dir.loc[groups.at[b, "run_dirs"]],
                                                           column)
            for dirs, b in zip(groups["run_dirs"], groups["baseline_group"])]


def csv_files_with(roots: Sequence[Path | str], columns: Sequence[str]) -> List[Path]:
    """CSV files under the roots whose header has all ``columns`` (e.g. the calibration's batch_times.csv with
    resolution, batch_size, seconds); run metrics are not searched."""
    found = []
    for root in map(Path, roots):
        for path in sorted(root.rglob("*.csv")):
            if path.name == "metrics.csv":
                continue
            try:
                with open(path, newline="") as fh:
                    header = {h.strip() for h in fh.readline().split(",")}
            except (OSError, UnicodeDecodeError):
                continue
            if set(columns) <= header:
                found.append(path)
    return found


def metric_frame(run_dir: str | Path) -> pd.DataFrame:
    """A run's metrics.csv as numbers (empty when missing or unreadable)."""
    try:
        rows = read_metric_rows(Path(run_dir) / "metrics.csv")
    except (OSError, ValueError, UnicodeDecodeError):
        return pd.DataFrame()
    return pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce") if rows else pd.DataFrame()
