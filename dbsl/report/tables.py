"""The run list, the accuracy-and-time tables (the paper's Tables 5, 8 and 10 layout, one per experiment), the
results per run and the regime's ceiling (the one-process reference runs beside the PS baseline)."""
from __future__ import annotations

import pandas as pd

from .collect import RunSet, is_reference, metric_frame, reference_name
from .render import Table, mean_std, num, slug


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
    statuses = ("completed", "failed", "running", "interrupted", "malformed", "diverged") + (
        ("pruned",) if counts.get("pruned") else ())  # a tuning study's trials stopped early
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
        clocks = [("modelled time (s)", "modelled_time"), ("wall clock (s)", "wall_time")]
        if part["measured_time_s_mean"].notna().any():
            clocks.insert(1, ("measured time (s)", "measured_time"))
        for header, column in clocks:
            display[header] = [mean_std(m, s, None) for m, s in zip(part[f"{column}_s_mean"], part[f"{column}_s_std"])]
            display[header.replace(" (s)", "") + " Δ (%)"] = part[f"delta_{column}_pct"].map(
                lambda v: num(v, 1, signed=True))
        notes = ["Mean ± sample standard deviation over seeds (runs = seeds). Best: the highest test top-1 over all "
                 "evaluated commits, with the test loss there (paper Tables 8/10); final: the last commit's "
                 "(Tables 3/5). Δ: against the experiment's baseline (no small batches, no CPL, same settings), "
                 "top-1 in percentage points, times in per cent.",
                 "Modelled time: the virtual clock of the time model (the simulated executor's training time); "
                 "measured time (where recorded): the same ASP schedule replayed with the measured mini-epoch "
                 "seconds; wall clock: seconds this machine took (with the distributed executor, the real training "
                 "time)."]
        if not part["baseline_group"].notna().all():
            notes.append("Rows without a completed baseline run of the same settings have empty Δ columns: run "
                         "scheme=baseline with the same overrides.")
        tables.append(Table(f"accuracy_time_{slug(experiment)}", f"Accuracy and training time: {experiment}",
                            data, display, notes))
    return tables


def peak_loss(run_dir: str) -> float:
    """The highest test loss evaluated after the first epoch (NaN when there is none)."""
    m = metric_frame(run_dir)
    if m.empty or not {"epoch", "test_loss"} <= set(m.columns):
        return float("nan")
    after = m.loc[m["epoch"] > 1, "test_loss"].dropna()
    return float(after.max()) if len(after) else float("nan")


def per_seed_table(runset: RunSet, groups: pd.DataFrame, values: pd.Series | None = None,
                   endpoint_label: str | None = None) -> Table:
    """Every included run: its group, seed, the endpoint (when one is pre-registered), best and final top-1 and
    loss, and the modelled, measured and wall-clock times."""
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    order = {d: (i, g["label"], g["experiment"]) for i, (_, g) in enumerate(groups.iterrows()) for d in g["run_dirs"]}
    rows = []
    for run_dir, (rank, label, experiment) in order.items():
        r = runs.loc[run_dir]
        row = {"experiment": experiment, "label": label, "scheme": r["scheme"], "num_small": r["num_small"],
               "num_workers": r["num_workers"], "merge_rule": r.get("merge_rule"), "seed": r["seed"],
               "run_dir": run_dir, "_rank": rank}
        if values is not None:
            row["endpoint_pct"] = values.get(run_dir)
        for column in ("best_top1_pct", "best_loss", "final_top1_pct", "final_loss", "modelled_time_s",
                       "measured_time_s", "wall_time_s"):
            row[column] = r.get(column)
        row["measured_clock"] = r.get("measured_clock")
        row["peak_loss_after_epoch1"] = peak_loss(run_dir)
        rows.append(row)
    data = pd.DataFrame(rows).sort_values(["_rank", "seed"]).drop(columns="_rank").reset_index(drop=True)
    display = pd.DataFrame({"experiment": data["experiment"],
                            "group": [f"reference, {reference_name(m)}: {lab}" if is_reference(n) else lab
                                      for lab, n, m in zip(data["label"], data["num_workers"],
                                                           data["merge_rule"])],
                            "seed": data["seed"].map(lambda v: int(v) if pd.notna(v) else "")})
    if values is not None:
        display[f"{endpoint_label} (%)"] = data["endpoint_pct"].map(lambda v: num(v, 2))
    display["best top-1 (%)"] = data["best_top1_pct"].map(lambda v: num(v, 2))
    display["final top-1 (%)"] = data["final_top1_pct"].map(lambda v: num(v, 2))
    display["final loss"] = data["final_loss"].map(lambda v: num(v, 3))
    display["modelled time (s)"] = data["modelled_time_s"].map(lambda v: num(v, 1))
    if data["measured_time_s"].notna().any():
        display["measured time (s)"] = data["measured_time_s"].map(lambda v: num(v, 1))
    display["wall clock (s)"] = data["wall_time_s"].map(lambda v: num(v, 1))
    display["peak test loss after epoch 1"] = data["peak_loss_after_epoch1"].map(lambda v: num(v, 3))
    notes = ["One row per completed run in the numbers. Best: the highest test top-1 over the evaluated commits; "
             "final: the last commit's; times: the modelled (virtual) clock, the measured clock (the ASP schedule "
             "replayed with the measured mini-epoch seconds, where recorded) and this machine's wall clock. Peak test "
             "loss: the highest over the evaluations after the first epoch (a spike says the LR is too high for the "
             "regime)."]
    return Table("per_seed", "Results per run (seed)", data, display, notes)


def _with_gaps(data: pd.DataFrame) -> pd.DataFrame:
    """Each PS baseline's gap to its experiment's first reference, paired by seed where both ran the seed (else the
    difference of the means); NaN without a reference."""
    for experiment, part in data.groupby("experiment"):
        refs = part[part["role"].str.startswith("reference")]
        for i in part.index[part["role"] == "PS baseline"]:
            if refs.empty:
                continue
            ref = pd.Series(refs.iloc[0]["per_seed"], dtype=float)
            ours = pd.Series(data.at[i, "per_seed"], dtype=float)
            common = ref.index.intersection(ours.index)
            data.at[i, "gap_pp"] = float((ours[common] - ref[common]).mean()) if len(common) else (
                ours.mean() - ref.mean())
            data.at[i, "gap_paired_seeds"] = len(common)
    if "gap_pp" not in data:
        data["gap_pp"], data["gap_paired_seeds"] = float("nan"), 0
    return data


def reference_table(runset: RunSet, groups: pd.DataFrame, values: pd.Series | None = None,
                    endpoint_label: str = "final top-1") -> Table | None:
    """The regime's ceiling: per experiment, the references (ps.num_workers = 1; :func:`reference_name` says which kind)
    beside the parameter-server baseline, per seed and as mean ± s.d., with the gap paired by seed."""
    if groups.empty or "num_workers" not in groups:
        return None
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    values = runs["final_top1_pct"] if values is None else values
    rows = []
    for experiment, part in groups.groupby("experiment", sort=True):
        refs = part[part["num_workers"].map(is_reference)]
        plain = part[(part["group"] == part["baseline_group"]) & ~part["num_workers"].map(is_reference)
                     & (part["num_small"] == 0) & ~part["cyclic"].astype(bool)]
        for kind, members in (("reference", refs), ("PS baseline", plain)):
            for _, g in members.iterrows():
                kind = f"reference: {reference_name(g['merge_rule'])}" if kind.startswith("reference") else kind
                by_seed = {int(runs.loc[d, "seed"]): values.get(d) for d in g["run_dirs"]}
                vals = pd.Series(by_seed, dtype=float).sort_index()
                rows.append({"experiment": experiment, "role": kind, "label": g["label"],
                             "num_workers": int(g["num_workers"]), "runs": len(vals), "mean_pct": vals.mean(),
                             "std_pct": vals.std(), "per_seed": vals.to_dict(),
                             "peak_loss_after_epoch1": pd.Series([peak_loss(d) for d in g["run_dirs"]],
                                                                 dtype=float).max()})
    if not any(r["role"].startswith("reference") for r in rows):
        return None
    data = _with_gaps(pd.DataFrame(rows))
    display = pd.DataFrame({
        "experiment": data["experiment"], "runs": data["role"], "group": data["label"],
        "workers": data["num_workers"], "seeds": data["runs"],
        f"{endpoint_label} (%)": [mean_std(m, s, 2) for m, s in zip(data["mean_pct"], data["std_pct"])],
        "per seed": data["per_seed"].map(lambda d: ", ".join(f"{int(k)}: {v:.2f}" for k, v in d.items())),
        "PS − reference (pp)": data["gap_pp"].map(lambda v: num(v, 2, signed=True)),
        "peak test loss after epoch 1": data["peak_loss_after_epoch1"].map(lambda v: num(v, 3)),
    })
    data["per_seed"] = data["per_seed"].map(lambda d: ";".join(f"{int(k)}:{v!r}" for k, v in d.items()))
    notes = [f"A reference trains the same model on the same samples with one worker (ps.num_workers = 1): its "
             f"{endpoint_label} is the ceiling the parameter server's baseline is measured against. With "
             "ps.merge_rule=replace it is plain SGD in one process; with the journal merge it is a one-worker "
             "parameter server, every push averaged 50/50 with the server's copy (the authors' w2s0 runs), which is "
             "not plain SGD. The gap is paired by seed where both ran the seed, against the first reference listed. "
             "Mean ± sample s.d. over seeds; peak test loss: the highest of any run of the group after its first "
             "epoch."]
    return Table("reference", "The regime's ceiling: reference runs beside the PS baseline", data, display, notes)
