"""Figures (seaborn, PNG): test accuracy and loss against training time (paper Figs. 11-12), accuracy against time
with the Pareto front, the schedule (LR, resolution, batch size) over commits, and the time model's fit."""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..plan import Plan  # noqa: E402
from ..timemodel import fit_linear  # noqa: E402
from .collect import metric_frame  # noqa: E402

TIME_AXES = (("modelled_time", "modelled time (s)"), ("wall_time", "wall clock (s)"))


@dataclass
class Figure:
    path: str  # relative to the report folder
    caption: str


def _save(fig, out: Path, name: str) -> str:
    path = out / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"figures/{name}.png"


def _legend_outside(fig, ax) -> None:
    """One legend for the figure, below the panels, with long group labels wrapped."""
    handles, labels = ax.get_legend_handles_labels()
    for a in fig.axes:
        if a.get_legend():
            a.get_legend().remove()
    if handles:
        labels = [textwrap.fill(label, 70) for label in labels]
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=8,
                   ncol=1 if max(len(label) for label in labels) > 40 else min(3, len(labels)))


def evaluations(part: pd.DataFrame) -> pd.DataFrame:
    """The evaluated commits of every run of the groups in ``part``, labelled by group."""
    frames = []
    for _, g in part.iterrows():
        for run_dir in g["run_dirs"]:
            m = metric_frame(run_dir)
            if not m.empty and {"test_top1", "test_loss", "modelled_time", "wall_time"} <= set(m.columns):
                m = m.dropna(subset=["test_top1"])
                frames.append(m.assign(label=g["label"], run=run_dir, test_top1_pct=m["test_top1"] * 100.0))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curves(part: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """Test top-1 and loss against modelled and wall-clock time, one line per run, coloured by group."""
    evals = evaluations(part)
    if evals.empty:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharey="row")
    for col, (x, xlabel) in enumerate(TIME_AXES):
        for row, (y, ylabel) in enumerate((("test_top1_pct", "test top-1 (%)"), ("test_loss", "test loss"))):
            ax = axes[row, col]
            sns.lineplot(data=evals, x=x, y=y, hue="label", units="run", estimator=None, ax=ax, marker="o",
                         markersize=3, linewidth=1)
            ax.set(xlabel=xlabel, ylabel=ylabel)
    fig.suptitle(title)
    _legend_outside(fig, axes[0, 0])
    return Figure(_save(fig, out, name), f"{title}: test top-1 and loss against training time (paper Figs. 11-12)")


def pareto_front(times: np.ndarray, accs: np.ndarray) -> np.ndarray:
    """Indices of the runs no other run beats on both time (lower) and accuracy (higher), by time."""
    order = np.lexsort((-accs, times))
    front, best = [], -np.inf
    for i in order:
        if accs[i] > best:
            front.append(i)
            best = accs[i]
    return np.array(front, dtype=int)


def pareto(runs: pd.DataFrame, part: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """Best top-1 against training time, one point per run, with the Pareto front."""
    members = runs[runs["included"] & runs["group"].isin(part["group"])].merge(
        part[["group", "label"]], on="group")
    if members.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (x, xlabel) in zip(axes, TIME_AXES):
        column = f"{x}_s"
        sns.scatterplot(data=members, x=column, y="best_top1_pct", hue="label", ax=ax, s=50)
        valid = members.dropna(subset=[column, "best_top1_pct"])
        front = valid.iloc[pareto_front(valid[column].to_numpy(), valid["best_top1_pct"].to_numpy())]
        ax.step(front[column], front["best_top1_pct"], where="post", color="black", linewidth=1, label="Pareto front")
        ax.set(xlabel=xlabel, ylabel="best test top-1 (%)")
    fig.suptitle(title)
    _legend_outside(fig, axes[0])
    return Figure(_save(fig, out, name), f"{title}: best top-1 against training time per run, with the Pareto front")


def schedule_frame(plan: Plan) -> pd.DataFrame:
    commits = np.arange(plan.total_commits)
    phases = [plan.phase_at(c) for c in commits]
    return pd.DataFrame({"commit": commits, "LR": [plan.lr_at(c) for c in commits],
                         "resolution (px)": [p.resolution for p in phases],
                         "B_L": [p.batch_large for p in phases],
                         "B_S": [p.batch_small if plan.num_small else np.nan for p in phases]})


def schedule(part: pd.DataFrame, out: Path, name: str, title: str, most: int = 8) -> Figure | None:
    """LR, resolution and batch sizes (B_L solid, B_S dashed) over commits: one column per group (its plan.json),
    for at most ``most`` groups."""
    plans = []
    for _, g in part.iterrows():
        try:
            plans.append((g["label"], Plan.from_dict(json.loads((Path(g["run_dirs"][0]) / "plan.json").read_text()))))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    if not plans:
        return None
    plans = plans[:most]
    fig, axes = plt.subplots(3, len(plans), figsize=(3.2 * len(plans) + 1, 7), sharex="col", sharey="row",
                             squeeze=False)
    for col, (label, plan) in enumerate(plans):
        data = schedule_frame(plan)
        axes[0, col].step(data["commit"], data["LR"], where="post")
        axes[1, col].step(data["commit"], data["resolution (px)"], where="post")
        axes[2, col].step(data["commit"], data["B_L"], where="post", label="B_L")
        if plan.num_small:
            axes[2, col].step(data["commit"], data["B_S"], where="post", linestyle="--", label="B_S")
        axes[0, col].set_title(textwrap.fill(label, 40), fontsize=8)
        axes[2, col].set_xlabel("commit")
        axes[2, col].legend(fontsize=8)
    for row, ylabel in enumerate(("LR", "resolution (px)", "batch size")):
        axes[row, 0].set_ylabel(ylabel)
    axes[0, 0].set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return Figure(_save(fig, out, name), f"{title}: the schedule over commits (LR, resolution, B_L and B_S)")


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
        figures.append(Figure(_save(fig, out, f"time_model_{profile}"),
                              f"Time model {profile}: measurements and the linear fit t(B) = a·B + b (Eq. 2)"))
    return figures


VERDICT_COLOURS = {"shown": "tab:green", "opposite": "tab:red"}  # anything else (not shown, not tested): grey


def claims(data: pd.DataFrame, out: Path, name: str, title: str) -> Figure | None:
    """A forest plot of the claims table: per scheme and n_S, the change of best top-1 and of training time (the
    table's clock) against the baseline with its 95 % interval over seeds, coloured by verdict, and the paper's
    change beside it."""
    if data.empty:
        return None
    data = data.iloc[::-1].reset_index(drop=True)  # first row on top
    labels = [f"{s} n_S={n}" for s, n in zip(data["scheme"], data["num_small"])]
    y = np.arange(len(data))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(data) + 1.8), sharey=True)
    panels = (("delta_best_top1", "paper_delta_top1_pp", "accuracy_verdict", "Δ best top-1 (pp)"),
              ("delta_time", "paper_delta_time_pct", "time_verdict", f"Δ {data['clock'].iloc[0]} time (%)"))
    for ax, (column, paper, verdict, xlabel) in zip(axes, panels):
        mean = data[f"{column}_pp" if column.endswith("top1") else f"{column}_pct"]
        low, high = data[f"{column}_low"], data[f"{column}_high"]
        colours = [VERDICT_COLOURS.get(str(v).split(" (")[0], "tab:gray") for v in data[verdict]]
        for i in y:
            err = [[mean[i] - low[i]], [high[i] - mean[i]]] if pd.notna(low[i]) else None
            ax.errorbar(mean[i], i, xerr=err, fmt="o", color=colours[i], capsize=3)
        ax.scatter(data[paper], y, marker="D", facecolors="none", edgecolors="black", label="paper (same n_S)")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(xlabel=xlabel, yticks=y, yticklabels=labels)
        ax.grid(axis="x", alpha=0.3)
    k = data.loc[data["num_small"] > 0, "extra_time_ratio"]
    if not k.empty:
        axes[1].axvline((float(k.iloc[0]) - 1) * 100, color="tab:blue", linestyle="--", linewidth=0.8,
                        label=f"DBSL's budget k (+{(float(k.iloc[0]) - 1) * 100:.0f} %)")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=f"this run: {v}")
               for v, c in (("shown", "tab:green"), ("not shown", "tab:gray"), ("opposite", "tab:red"))]
    for ax in axes:
        handles += [h for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in {x.get_label() for x in handles}]
    fig.suptitle(f"{title}: the paper's claims against these runs (95 % interval over seeds)")
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), frameon=False,
               fontsize=8)
    return Figure(_save(fig, out, name), f"{title}: change against the baseline with its 95 % interval over seeds, "
                                         "coloured by whether it shows the paper's claim; diamonds: the paper")
