"""The run list and the accuracy-and-time tables (the paper's Tables 5, 8 and 10 layout), one per experiment."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .collect import RunSet
from ..plan import dataset_size
from .params import config_from_yaml, parameter_table
from .render import Table, mean_std, num


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "experiment"


def runs_table(runset: RunSet) -> Table:
    """Every record found: its status and whether it is in the numbers (and why not)."""
    runs = runset.runs
    columns = ["run_dir", "status", "included", "name", "dataset", "scheme", "num_small", "extra_time_ratio", "seed",
               "commits_recorded", "total_commits", "best_top1_pct", "final_top1_pct", "modelled_time_s",
               "wall_time_s", "note"]
    data = runs.reindex(columns=columns)
    display = pd.DataFrame({
        "run": data["run_dir"], "status": data["status"].replace({"running": "incomplete"}),
        "in numbers": data["included"].map({True: "yes", False: "no"}),
        "scheme": data["scheme"].fillna(""), "n_S": data["num_small"].map(lambda v: "" if pd.isna(v) else int(v)),
        "seed": data["seed"].map(lambda v: "" if pd.isna(v) else int(v)),
        "commits": [f"{int(c)}/{int(t)}" if not (pd.isna(c) or pd.isna(t)) else ""
                    for c, t in zip(data["commits_recorded"], data["total_commits"])],
        "best top-1 (%)": data["best_top1_pct"].map(lambda v: num(v, 2)),
        "note": data["note"].fillna(""),
    })
    counts = runs["status"].value_counts()
    statuses = ("completed", "failed", "running", "malformed", "diverged")
    notes = [f"{len(runs)} records: " + ", ".join(f"{counts.get(s, 0)} {s.replace('running', 'incomplete')}"
                                                  for s in statuses) +
             f"; {int(runs['included'].sum())} in the numbers."]
    return Table("runs", "Runs found", data, display, notes)


def accuracy_tables(groups: pd.DataFrame) -> list[Table]:
    """Per experiment: loss, best and final top-1, modelled and wall-clock time, each with its change against the
    baseline; mean ± sample s.d. over seeds."""
    tables = []
    for experiment, part in groups.groupby("experiment", sort=True):
        part = part.reset_index(drop=True)
        columns = ["experiment", "label", "scheme", "num_small", "extra_time_ratio", "update_factor", "runs", "seeds"]
        varying = sorted({k for v in part["varying"] for k in (v or {})})
        extra = pd.DataFrame([{k: (v or {}).get(k) for k in varying} for v in part["varying"]], index=part.index)
        metrics = [c for c in part.columns if c.endswith(("_mean", "_std")) or c.startswith("delta_")]
        data = pd.concat([part[columns], extra, part[metrics]], axis=1)
        data.insert(len(columns), "baseline", part["group"] == part["baseline_group"])
        display = pd.DataFrame({"scheme": part["scheme"], "n_S": part["num_small"],
                                "k": [f"{k:g}" if n else "-" for k, n in zip(part["extra_time_ratio"],
                                                                              part["num_small"])],
                                "f": [u if n else "-" for u, n in zip(part["update_factor"], part["num_small"])]})
        for key in varying:
            display[key] = extra[key].map(lambda v: "[" + ",".join(map(str, v)) + "]" if isinstance(v, tuple) else v)
        display["runs"] = part["runs"]
        for header, column, digits in (("test loss (at best)", "best_loss", 3), ("best top-1 (%)", "best_top1_pct", 2),
                                       ("final top-1 (%)", "final_top1_pct", 2)):
            display[header] = [mean_std(m, s, digits) for m, s in zip(part[f"{column}_mean"], part[f"{column}_std"])]
            if column != "best_loss":
                delta = f"delta_{column.removesuffix('_pct')}_pp"
                display[header.replace(" (%)", "") + " Δ (pp)"] = part[delta].map(lambda v: num(v, 2, signed=True))
        for header, column in (("modelled time (s)", "modelled_time"), ("wall clock (s)", "wall_time")):
            display[header] = [mean_std(m, s, None) for m, s in zip(part[f"{column}_s_mean"], part[f"{column}_s_std"])]
            display[header.replace(" (s)", "") + " Δ (%)"] = part[f"delta_{column}_pct"].map(
                lambda v: num(v, 1, signed=True))
        notes = ["Mean ± sample standard deviation over seeds (runs = seeds). Best: the highest test top-1 over all "
                 "evaluated commits, with the test loss there (paper Tables 8/10); final: the last commit's "
                 "(Tables 3/5). Δ: against the experiment's baseline (no small batches, no CPL, same settings), "
                 "top-1 in percentage points, times in per cent.",
                 "Modelled time: the virtual clock of the time model (the simulated executor's training time); wall "
                 "clock: seconds this machine took (with the distributed executor, the real training time)."]
        if not part["baseline_group"].notna().all():
            notes.append("Rows without a completed baseline run of the same settings have empty Δ columns: run "
                         "scheme=baseline with the same overrides.")
        tables.append(Table(f"accuracy_time_{slug(experiment)}", f"Accuracy and training time: {experiment}",
                            data, display, notes))
    return tables


def run_parameter_tables(runset: RunSet, groups: pd.DataFrame, problems: list | None = None) -> list[Table]:
    """Training parameters (Table 2/6 layout) of each experiment's runs, from a run's config.yaml, for the k values
    its runs used; settings that give the same table are shown once. Configs that cannot be read go to
    ``problems``."""
    problems = [] if problems is None else problems
    tables = []
    for experiment, part in groups.groupby("experiment", sort=True):
        seen = set()
        for _, setup in part.groupby("setup", sort=True):
            run_dir = setup["run_dirs"].iloc[0][0]
            if not (Path(run_dir) / "config.yaml").exists():
                continue
            try:
                cfg = config_from_yaml(Path(run_dir) / "config.yaml")
            except Exception as err:  # noqa: BLE001 - e.g. a record of an older config schema: no table, named
                problems.append(f"{run_dir}/config.yaml: no training-parameter table ({type(err).__name__})")
                continue
            size = runset.runs.set_index("run_dir")["dataset_size"].get(run_dir)
            size = int(size) if pd.notna(size) else dataset_size(cfg)
            ks = sorted(set(setup.loc[setup["num_small"] > 0, "extra_time_ratio"])) or [cfg.dbsl.extra_time_ratio]
            suffix = f" ({len(seen) + 1})" if seen else ""
            table = parameter_table(f"params_{slug(experiment)}{suffix.replace(' (', '_').rstrip(')')}",
                                    f"Training parameters: {experiment}{suffix}", cfg, size, ks)
            fingerprint = table.data.to_csv()
            if fingerprint not in seen:
                seen.add(fingerprint)
                tables.append(table)
    return tables
