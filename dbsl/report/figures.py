"""Figures (matplotlib/seaborn, PNG): test accuracy and loss against training time (paper Figs. 11-12), accuracy
against time with the Pareto front, the planned schedule (LR, resolution, batch size) over commits and the realised
one, the claims' forest plot, and the time model's fit. One colour per scheme in every figure (SCHEME_COLOURS)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import List

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..plan import Plan  # noqa: E402
from ..timemodel import fit_linear  # noqa: E402
from .collect import is_reference, metric_frame, reference_name  # noqa: E402
from .render import Figure, save_figure  # noqa: E402
from .schedule import read_plan, realised  # noqa: E402

# One colour per scheme, the same in every figure (the references: one worker, ps.num_workers=1); n_S by line style
SCHEME_COLOURS = {"baseline": "#333333", "dbsl": "#1f77b4", "cpl": "#2ca02c", "hybrid": "#d62728",
                  "reference": "#9467bd"}
N_S_STYLES = {0: ("-", "o"), 1: (":", "v"), 2: ("-", "o"), 3: ("--", "s"), 4: ("-.", "D")}
PAPER_MARKER = dict(marker="D", facecolors="none", edgecolors="black", s=40)


def colour(scheme: str, num_workers=None) -> str:
    """The colour of a scheme (of the reference when the run is one process)."""
    if is_reference(num_workers):
        return SCHEME_COLOURS["reference"]
    return SCHEME_COLOURS.get(scheme, "#7f7f7f")


def style(num_small) -> tuple[str, str]:
    """(line style, marker) of an n_S."""
    return N_S_STYLES.get(int(num_small), ("-", "o"))


def group_style(g) -> dict:
    line, marker = style(g["num_small"])
    label = g["label"] if not is_reference(g.get("num_workers")) else \
        f"reference, {reference_name(g.get('merge_rule'))} ({g['label']})"
    return {"color": colour(g["scheme"], g.get("num_workers")), "linestyle": line, "marker": marker, "label": label}


def _save(fig, out: Path, name: str, caption: str) -> Figure:
    try:
        return save_figure(fig, out, name, caption)
    finally:
        plt.close(fig)


def _legend_below(fig, handles, labels, ncol: int | None = None) -> None:
    """One legend for the figure, below the panels, with long labels wrapped."""
    for a in fig.axes:
        if a.get_legend():
            a.get_legend().remove()
    if handles:
        labels = [textwrap.fill(label, 60) for label in labels]
        ncol = ncol or (1 if max(len(label) for label in labels) > 60 else min(4, len(labels)))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=8,
                   ncol=ncol)


def time_axes(evals: pd.DataFrame) -> list[tuple[str, str]]:
    """The clocks to plot against: modelled, and measured where the records have it (else the wall clock)."""
    if "measured_time" in evals and evals["measured_time"].notna().all():
        return [("modelled_time", "modelled time (s)"), ("measured_time", "measured time (s)")]
    return [("modelled_time", "modelled time (s)"), ("wall_time", "wall clock (s)")]


def evaluations(part: pd.DataFrame) -> pd.DataFrame:
    """The evaluated commits of every run of the groups in ``part``, labelled by group."""
    frames = []
    for _, g in part.iterrows():
        for run_dir in g["run_dirs"]:
            m = metric_frame(run_dir)
            if not m.empty and {"test_top1", "test_loss", "modelled_time", "wall_time"} <= set(m.columns):
                m = m.dropna(subset=["test_top1"])
                frames.append(m.assign(group=g["group"], label=g["label"], run=run_dir,
                                       test_top1_pct=m["test_top1"] * 100.0))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curves(part: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """Test top-1 and loss (log axis) against training time: per group the mean over seeds at each evaluated commit
    and a band of ± one s.d., coloured by scheme."""
    evals = evaluations(part)
    if evals.empty:
        return None
    axes_x = time_axes(evals)
    fig, axes = plt.subplots(2, len(axes_x), figsize=(11, 7.5), sharey="row", squeeze=False)
    handles = {}
    for _, g in part.iterrows():
        mine = evals[evals["group"] == g["group"]]
        if mine.empty:
            continue
        look = group_style(g)
        by_commit = mine.groupby("commit")
        for col, (x, xlabel) in enumerate(axes_x):
            xs = by_commit[x].mean()
            for row, (y, ylabel) in enumerate((("test_top1_pct", "test top-1 (%)"), ("test_loss", "test loss"))):
                ax = axes[row, col]
                mean, sd = by_commit[y].mean(), by_commit[y].std().fillna(0.0)
                line, = ax.plot(xs, mean, color=look["color"], linestyle=look["linestyle"], marker=look["marker"],
                                markersize=3, linewidth=1.2)
                low = (mean - sd).clip(lower=mean.min() * 0.5) if y == "test_loss" else mean - sd
                ax.fill_between(xs, low, mean + sd, color=look["color"], alpha=0.15, linewidth=0)
                ax.set(xlabel=xlabel, ylabel=ylabel)
                handles.setdefault(look["label"], line)
    for ax in axes[1]:
        ax.set_yscale("log")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    caption = (f"{title}: test top-1 and loss (log scale) against training time, mean over seeds with a band of ± one "
               "s.d., one colour per scheme, line style by n_S (paper Figs. 11-12)")
    if _reference_to_the_right(part, evals, axes_x, axes, handles):
        caption += ("; the time axes end with the parameter-server runs, the one-process reference's last value is "
                    "the dotted line")
    fig.suptitle(title)
    fig.tight_layout()
    _legend_below(fig, list(handles.values()), list(handles.keys()))
    return _save(fig, out, name, caption)


def final_stage(part: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """Test top-1 over the run's last quarter of epochs, by epoch: per group the mean over seeds of each epoch's
    evaluations with a band of ± one s.d. of the seeds' epoch means, on an axis zoomed to these values, where the
    endpoint differences of a few tenths of a point are visible (the whole-run curves span 20-90 %)."""
    evals = evaluations(part)
    if evals.empty or "epoch" not in evals:
        return None
    start = evals["epoch"].max() * 3 // 4
    late = evals[evals["epoch"] > start]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    handles = {}
    for _, g in part.iterrows():
        mine = late[late["group"] == g["group"]]
        if mine.empty:
            continue
        look = group_style(g)
        per_run = mine.groupby(["run", "epoch"])["test_top1_pct"].mean().unstack("run")
        mean, sd = per_run.mean(axis=1), per_run.std(axis=1).fillna(0.0)
        line, = ax.plot(mean.index, mean, color=look["color"], linestyle=look["linestyle"], marker=look["marker"],
                        markersize=3, linewidth=1.2)
        ax.fill_between(mean.index, mean - sd, mean + sd, color=look["color"], alpha=0.12, linewidth=0)
        handles[look["label"]] = line
    ax.set(xlabel="epoch", ylabel="test top-1 (%)")
    ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: the final stage")
    fig.tight_layout()
    _legend_below(fig, list(handles.values()), list(handles.keys()))
    return _save(fig, out, name, f"{title}: test top-1 over the last quarter of the epochs (after epoch "
                                 f"{int(start)}), mean over seeds of each epoch's evaluations with a band of "
                                         "± one s.d. over seeds; the y axis spans these values only")


def _reference_to_the_right(part, evals, axes_x, axes, handles) -> bool:
    """The one-process reference takes several times the parameter server's time, which squeezes the PS curves
    into the left of the axes: end the time axes with the PS runs and draw the reference's last mean value as a
    dotted line. False (axes unchanged) when no reference or no PS group was evaluated."""
    is_ref = part["num_workers"].map(is_reference)
    if not is_ref.any() or is_ref.all():
        return False
    ps = evals[evals["group"].isin(part.loc[~is_ref, "group"])]
    if ps.empty:
        return False
    ends = ps.groupby(["group", "commit"])[[x for x, _ in axes_x]].mean().max()  # per clock: the slowest PS group's end
    drawn = False
    for _, g in part[is_ref].iterrows():
        mine = evals[evals["group"] == g["group"]]
        if mine.empty:
            continue
        drawn = True
        last = mine[mine["commit"] == mine["commit"].max()]
        for col, (x, _) in enumerate(axes_x):
            for row, y in enumerate(("test_top1_pct", "test_loss")):
                line = axes[row, col].axhline(last[y].mean(), color=group_style(g)["color"], linestyle=":",
                                              linewidth=1.2)
                axes[row, col].set_xlim(0, ends[x] * 1.05)
        handles.setdefault(f"reference's last evaluation (one worker; it ends at {last[axes_x[0][0]].mean():.0f} s "
                           f"{axes_x[0][1].split(' (')[0]})", line)
    return drawn


def pareto_front(times: np.ndarray, accs: np.ndarray) -> np.ndarray:
    """Indices of the runs no other run beats on both time (lower) and accuracy (higher), by time."""
    order = np.lexsort((-accs, times))
    front, best = [], -np.inf
    for i in order:
        if accs[i] > best:
            front.append(i)
            best = accs[i]
    return np.array(front, dtype=int)


def pareto(runs: pd.DataFrame, part: pd.DataFrame, out: Path, name: str, title: str,
           values: pd.Series | None = None, label: str = "best top-1") -> Figure | None:
    """The endpoint (best top-1 unless given) against training time, one point per parameter-server run, with their
    Pareto front; a reference (one worker, several times the PS's time) is its mean endpoint as a dotted line, so
    that it does not stretch the time axes."""
    members = runs[runs["included"] & runs["group"].isin(part["group"])]
    if members.empty:
        return None
    members = members.assign(top1=(values.reindex(members["run_dir"]).to_numpy() if values is not None
                                   else members["best_top1_pct"]))
    is_ref = members["num_workers"].map(is_reference)
    references, members = members[is_ref], members[~is_ref]
    if members.empty:
        return None
    panels = [("modelled_time_s", "modelled time (s)", members)]  # the time model's clock: the same on every CPU
    if members.get("measured_time_s", pd.Series(dtype=float)).notna().all():
        # seconds measured on different CPUs are not comparable: one panel (and one front) per CPU
        cpus = members["cpu"].fillna("CPU not recorded") if "cpu" in members else pd.Series("", index=members.index)
        panels += [("measured_time_s", "measured time (s)" + (f"\n{cpu}" if cpus.nunique() > 1 else ""),
                    members[cpus == cpu]) for cpu in sorted(cpus.unique())]
    else:
        panels.append(("wall_time_s", "wall clock (s)", members))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), sharey=True, squeeze=False)
    handles = {}
    for ax, (column, xlabel, shown) in zip(axes[0], panels):
        for _, g in part[~part["num_workers"].map(is_reference)].iterrows():
            mine = shown[shown["group"] == g["group"]]
            look = group_style(g)
            handles[look["label"]] = ax.scatter(mine[column], mine["top1"], color=look["color"],
                                                marker=look["marker"], s=30)
        valid = shown.dropna(subset=[column, "top1"])
        front = valid.iloc[pareto_front(valid[column].to_numpy(), valid["top1"].to_numpy())]
        handles["Pareto front"], = ax.step(front[column], front["top1"], where="post", color="black", linewidth=1)
        for _, g in part[part["num_workers"].map(is_reference)].iterrows():
            mine = references[references["group"] == g["group"]]["top1"].dropna()
            if len(mine):
                handles[f"{group_style(g)['label']}: mean {mine.mean():.2f} % (its time is off these axes)"] = \
                    ax.axhline(mine.mean(), color=colour("", 1), linestyle=":", linewidth=1.2)
        ax.set(xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"{label} (%)")
    fig.suptitle(title)
    fig.tight_layout()
    _legend_below(fig, list(handles.values()), list(handles.keys()))
    per_cpu = " (measured time: one panel and front per CPU model)" if len(panels) > 2 else ""
    return _save(fig, out, name,
                 f"{title}: {label} against training time per run, with the Pareto front{per_cpu}")


def schedule_frame(plan: Plan) -> pd.DataFrame:
    commits = np.arange(plan.total_commits)
    phases = [plan.phase_at(c) for c in commits]
    return pd.DataFrame({"commit": commits, "LR": [plan.lr_at(c) for c in commits],
                         "resolution (px)": [p.resolution for p in phases],
                         "B_L": [p.batch_large for p in phases],
                         "B_S": [p.batch_small if plan.num_small else np.nan for p in phases]})


def _plans(part: pd.DataFrame) -> list[tuple[pd.Series, Plan]]:
    """Each group with the plan of its first run (groups whose plan.json cannot be read are left out)."""
    plans = [(g, read_plan(g["run_dirs"][0])) for _, g in part.iterrows()]
    return [(g, plan) for g, plan in plans if plan is not None]


def _by_scheme(plans: list) -> dict:
    """Scheme -> its groups' (group, plan), in the report's scheme order; the references (one process, no
    asynchronous workers) are left out of the schedule figures."""
    out = {}
    for g, plan in plans:
        if not is_reference(g.get("num_workers")):
            out.setdefault(g["scheme"], []).append((g, plan))
    return out


def schedule(part: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """The planned schedule over commits, one column per scheme: LR, resolution, and the batch sizes (B_L solid,
    B_S of each n_S in its line style)."""
    columns = _by_scheme(_plans(part))
    if not columns:
        return None
    fig, axes = plt.subplots(3, len(columns), figsize=(min(11, 2.9 * len(columns) + 1), 6.5), sharex=True,
                             sharey="row", squeeze=False)
    for col, (scheme, members) in enumerate(columns.items()):
        c = colour(scheme)
        first = schedule_frame(members[0][1])
        axes[0, col].step(first["commit"], first["LR"], where="post", color=c)
        axes[1, col].step(first["commit"], first["resolution (px)"], where="post", color=c)
        axes[2, col].step(first["commit"], first["B_L"], where="post", color=c, label="B_L")
        for g, plan in members:
            if plan.num_small:
                line, _ = style(plan.num_small)
                data = schedule_frame(plan)
                axes[2, col].step(data["commit"], data["B_S"], where="post", color=c, linestyle=line,
                                  linewidth=1, label=f"B_S, n_S={plan.num_small}")
        axes[0, col].set_title(scheme, fontsize=10, color=c)
        axes[2, col].set_xlabel("commit")
        axes[2, col].legend(fontsize=7)
    for row, ylabel in enumerate(("LR", "resolution (px)", "batch size")):
        axes[row, 0].set_ylabel(ylabel)
    axes[0, 0].set_yscale("log")
    axes[2, 0].set_yscale("log")
    batches = sorted({int(v) for ax in axes[2] for line in ax.get_lines() for v in line.get_ydata()
                      if np.isfinite(v)})
    axes[2, 0].set_yticks(batches)  # a tick at every batch size the plans use, e.g. 29, 43, 64, 96
    axes[2, 0].yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[2, 0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: planned schedule")
    fig.tight_layout()
    return _save(fig, out, name, f"{title}: the planned schedule over commits, one column per scheme (LR, "
                                 "resolution, B_L and each n_S's B_S)")


def realised_schedule(part: pd.DataFrame, out: Path, name: str, title: str,
                      prefer: dict | None = None) -> Figure | None:
    """Per scheme (one column; the group of n_S ``prefer[scheme]`` where given, its lowest seed): the LR and
    resolution each commit's worker trained at (markers: large or small worker) over the plan's step line, stale
    commits (trained at the previous phase's settings after a milestone) ringed in black."""
    columns = _realised_runs(part, prefer)
    if not columns:
        return None
    fig, axes = plt.subplots(2, len(columns), figsize=(min(11, 2.9 * len(columns) + 1), 5.2), sharex=True,
                             sharey="row", squeeze=False)
    for col, (scheme, (g, plan, data, run_dir)) in enumerate(columns.items()):
        c = colour(g["scheme"], g.get("num_workers"))
        for row, (y, planned) in enumerate((("lr", "planned_lr"), ("resolution", "planned_resolution"))):
            ax = axes[row, col]
            ax.step(data["commit"], data[planned], where="post", color="#999999", linewidth=1, label="plan")
            for small, marker in ((False, "o"), (True, "s")):
                mine = data[data["small"].astype(bool) == small]
                if not mine.empty:
                    ax.scatter(mine["commit"], mine[y], color=c, marker=marker, s=9)
            stale = data[data["stale"]]
            ax.scatter(stale["commit"], stale[y], facecolors="none", edgecolors="black", s=40, linewidths=0.8)
            ax.grid(alpha=0.3)
        heading = f"{g['scheme']} n_S={int(g['num_small'])}"
        axes[0, col].set_title(f"{heading}, seed {_seed(run_dir)}\n{int(data['stale'].sum())} of {len(data)} commits "
                               "stale", fontsize=9, color=c)
        axes[1, col].set_xlabel("commit")
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel("LR trained at")
    axes[1, 0].set_ylabel("resolution trained at (px)")
    grey = "#777777"
    handles = [plt.Line2D([], [], color="#999999", label="plan"),
               plt.Line2D([], [], marker="o", linestyle="", color=grey, markersize=4, label="large-batch worker"),
               plt.Line2D([], [], marker="s", linestyle="", color=grey, markersize=4, label="small-batch worker"),
               plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black",
                          markersize=7, label="stale: the previous phase after a milestone")]
    labels = [h.get_label() for h in handles]
    fig.suptitle(f"{title}: realised schedule (what each commit's worker trained at) against the plan")
    fig.tight_layout()
    _legend_below(fig, handles, labels, ncol=4)
    return _save(fig, out, name, f"{title}: the realised schedule, per scheme one run: the LR and resolution "
                                 "each pushing worker trained at, over the plan's step line (grey); ringed: "
                                         "stale commits, trained at the previous phase's settings after a milestone "
                                 "(the stage-change latency of ASP)")


def _realised_runs(part: pd.DataFrame, prefer: dict | None) -> dict:
    """Scheme -> (group, plan, realised schedule, run) of the run its column shows: the lowest seed of the group of
    n_S ``prefer[scheme]`` (else of the lowest n_S); schemes without metrics to show are left out."""
    columns = {}
    for scheme, members in _by_scheme(_plans(part)).items():
        want = (prefer or {}).get(scheme)
        g, plan = min(members, key=lambda gp: (gp[0]["num_small"] != want, gp[0]["num_small"]))
        run_dir = sorted(g["run_dirs"])[0]
        data = realised(run_dir, plan)
        if not data.empty:
            columns[scheme] = (g, plan, data, run_dir)
    return columns


def _seed(run_dir) -> str:
    try:
        return str(json.loads((Path(run_dir) / "summary.json").read_text()).get("seed"))
    except (OSError, ValueError):
        return "?"


def time_model(measured: pd.DataFrame, out: Path) -> List[Figure]:
    """Per calibration profile: measured seconds against batch size per resolution, with the fitted line."""
    figures = []
    for profile, part in measured.groupby("profile", sort=True):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        resolutions = sorted(part["resolution"].unique())
        palette = dict(zip(resolutions, sns.color_palette(n_colors=len(resolutions))))
        for res, points in part.groupby("resolution"):
            ax.scatter(points["batch_size"], points["seconds"], s=14, color=palette[res],
                       label=f"{int(res)} px measured")
            if points["batch_size"].nunique() >= 2:
                a, b, r2 = fit_linear(points["batch_size"], points["seconds"])
                xs = np.linspace(0, points["batch_size"].max(), 50)
                ax.plot(xs, a * xs + b, color=palette[res], linewidth=1,
                        label=f"{int(res)} px fit: {a:.3g}·B + {b:.3g} (R² {r2:.3f})")
        ax.set(xlabel="batch size B", ylabel="seconds per batch", title=f"time model: {profile}")
        ax.legend(fontsize=8)
        figures.append(_save(fig, out, f"time_model_{profile}",
                             f"Time model {profile}: measurements and the linear fit t(B) = a·B + b (Eq. 2)"))
    return figures


def _claims_legend(data: pd.DataFrame, time_axis) -> list:
    """The forest plot's legend entries, and DBSL's time budget k drawn on the time panel where a row has one."""
    k = data.loc[data["num_small"] > 0, "extra_time_ratio"]
    handles = [plt.Line2D([], [], marker="o", linestyle="", color="grey", markersize=4, alpha=0.6,
                          label="one seed's paired difference"),
               plt.Line2D([], [], marker="o", linestyle="-", color="grey", label="mean, 95 % interval"),
               plt.Line2D([], [], marker="D", linestyle="", markerfacecolor="none", markeredgecolor="black",
                          label="paper (a single run each)")]
    if not k.empty:
        budget = (float(k.iloc[0]) - 1) * 100
        time_axis.axvline(budget, color=SCHEME_COLOURS["dbsl"], linestyle="--", linewidth=0.8)
        handles.append(plt.Line2D([], [], color=SCHEME_COLOURS["dbsl"], linestyle="--",
                                  label=f"DBSL's budget k (+{budget:.0f} %)"))
    return handles


def claims(data: pd.DataFrame, per_seed: pd.DataFrame, out: Path, name: str, title: str,
           endpoint_key: str = "best_top1", endpoint_label: str = "best top-1") -> Figure | None:
    """A forest plot of the claims table: per scheme and n_S, the change of the endpoint and of the training time
    (the table's clock) against the baseline: every seed's paired difference as a dot, the mean with its 95 %
    interval as a bar, in the scheme's colour; the paper's change (one run each) as a hollow diamond."""
    if data.empty:
        return None
    data = data.iloc[::-1].reset_index(drop=True)  # first row on top
    labels = [f"{s} n_S={n}\n{str(v).split(' (')[0]}" for s, n, v in
              zip(data["scheme"], data["num_small"], data["accuracy_verdict"])]
    y = np.arange(len(data))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.6 * len(data) + 2.0), sharey=True)
    clock = data["clock"].iloc[0]
    panels = ((f"delta_{endpoint_key}", "_pp", "delta_top1_pp", "paper_delta_top1_pp",
               f"Δ {endpoint_label} (pp)"),
              ("delta_time", "_pct", "delta_time_pct", "paper_delta_time_pct", f"Δ {clock} time (%)"))
    for ax, (column, unit, seed_column, paper, xlabel) in zip(axes, panels):
        for i, row in data.iterrows():
            c = colour(row["scheme"])
            seeds = per_seed[(per_seed["label"] == row["label"])] if not per_seed.empty else per_seed
            if not seeds.empty:
                jitter = np.linspace(-0.18, 0.18, len(seeds)) if len(seeds) > 1 else np.zeros(1)
                ax.scatter(seeds[seed_column], i + 0.22 + jitter / 2, color=c, s=12, alpha=0.7, linewidths=0,
                           zorder=3)
            mean, low, high = row[f"{column}{unit}"], row[f"{column}_low"], row[f"{column}_high"]
            err = [[mean - low], [high - mean]] if pd.notna(low) else None
            ax.errorbar(mean, i, xerr=err, fmt="o", color=c, capsize=4, markersize=6, linewidth=2)
            if pd.notna(row[paper]):
                ax.scatter(row[paper], i, zorder=3, **PAPER_MARKER)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(xlabel=xlabel, yticks=y, yticklabels=labels)
        ax.grid(axis="x", alpha=0.3)
    handles = _claims_legend(data, axes[1])
    fig.suptitle(f"{title}: the paper's claims against these runs")
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), frameon=False,
               fontsize=8)
    return _save(fig, out, name, f"{title}: change against the baseline, paired by seed: dots are single "
                                 "seeds, bars the mean with its 95 % interval, in the scheme's colour; "
                                         "diamonds: the paper's change (a single run each); the y labels give the "
                                 "accuracy verdict")
