"""The forecast's own report (``python -m dbsl.forecast --report reports/forecast``): the paper's time columns
predicted beside the training-only time model, and the capacity of the parameter server against n (issue 27).

The paper's section and the capacity come from the presets, the paper's coefficients and published seconds and the
forecast terms alone; the records section reads the committed study's records (when they are there). Every number
in it is a forecast, except the paper's and the records' own.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import List

import pandas as pd

from .. import layout
from ..forecast import capacity as cap
from ..forecast.paper import FITTED, summary, validation
from ..forecast import distributed_runs
from ..forecast.records import validation as record_validation
from .html import index_html, readme
from .outdir import check_out, install, remove_stale_staging, staging_folder
from .paper import paper_results
from .render import Section, Table, num, save_figure

TITLE = "dbsl: the time forecast against the paper, and the server's capacity"
CAPACITY = {  # preset -> (overrides, what it is)
    "paper_cifar100": (["experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=0"],
                       "CIFAR-100, ResNet-18, GTX 1080 (the paper's coefficients), CPL, all workers at B_L"),
    "paper_imagenet": (["experiment=paper_imagenet", "scheme=hybrid", "dbsl.num_small=0"],
                       "ImageNet, ResNet-18, RTX 3090 with AMP (the paper's coefficients), CPL, all workers at B_L"),
    "fmnist_study": (["experiment=fmnist_study", "scheme=baseline", "dbsl.num_small=0"],
                     "the CPU regime of the study (Fashion-MNIST, ResNet-18 width 16, this machine's profile)"),
}


def span(values: pd.Series) -> str:
    low, high = f"{values.min():+.1f}", f"{values.max():+.1f}"
    return low if low == high else f"{low} to {high}"


def misses(table: pd.DataFrame) -> str:
    """Which term explains the rows that miss 2 points (the numbers read from ``table``)."""
    dbl = table[(table["scheme"] == "DBL") & ~table["reference"]]
    ranges = "; ".join(f"Table {k}: {span(g['paper_change_pct'])} % in the paper, {span(g['forecast_change_pct'])} % "
                       "forecast" for k, g in dbl.groupby("table"))
    hybrid = table[(table["table"] == 8) & (table["scheme"] == "hybrid")].set_index("num_small")["paper_change_pct"]
    text = (f"Where rows miss 2 points. The DBL rows ({ranges}): Eq. 8 picks B_S so that a small-batch mini-epoch "
            "costs k = 1.05 times a large one on the paper's own coefficients, and the paper measured less; no term "
            "outside training can take that back, so the miss is in the time model's small-batch times (Table 4 puts "
            "its errors at up to 3.5 %), not in a missing term. The paper's CIFAR hybrid rows move by "
            f"{hybrid.get(1, float('nan')) - hybrid.get(0, float('nan')):+.1f} points from n_S = 0 to n_S = 1 and "
            "back by up to 5 from n_S = 1 to 3, single runs each, where every term of the forecast changes by less "
            "than 1; a forecast cannot follow run-to-run noise.")
    for _, ref in table[table["reference"]].iterrows():
        if ref[f"fitted_{FITTED}"] == 0 and ref["forecast_s"] > ref["paper_s"]:
            text += (f" On Table {ref['table']} the fit stops at 0: the other terms alone give its reference row "
                     f"{ref['forecast_seconds_error_pct']:+.1f} % against the paper.")
    return text


def paper_section() -> Section:
    table = validation(paper_results())
    s = summary(table)
    display = pd.DataFrame({
        "table": table["table"], "scheme": table["scheme"], "n_S": table["num_small"],
        "paper s": table["paper_s"].map(lambda v: num(v, 1)),
        "forecast s": table["forecast_s"].map(lambda v: num(v, 1)),
        "training-only s": table["training_only_s"].map(lambda v: num(v, 1)),
        "paper change %": table["paper_change_pct"].map(lambda v: num(v, 2, True)),
        "forecast change %": table["forecast_change_pct"].map(lambda v: num(v, 2, True)),
        "training-only change %": table["training_only_change_pct"].map(lambda v: num(v, 2, True)),
        "forecast error pp": [("fitted" if ref else num(v, 2, True))
                              for ref, v in zip(table["reference"], table["forecast_change_error_pp"])],
        "forecast error s %": table["forecast_seconds_error_pct"].map(lambda v: num(v, 2, True))})
    f, t = s["forecast_change_error_pp"], s["training_only_change_error_pp"]
    text = [
        f"Each table's one fitted scalar is `{FITTED}` (a fixed cost of every mini-epoch on a worker), fitted on its "
        "reference row (DBL n_S=0) only: "
        + ", ".join(f"Table {k}: {v:.3g} s" for k, v in table.groupby("table")[f"fitted_{FITTED}"].first().items())
        + ". Every other term is the paper's or the plan's: the paper's time coefficients at the plan's step counts, "
        "1 Gbit/s links (paper section 5.1), the model's float32 bytes, the full test set after every commit at "
        "1/3 of the training cost of the same batches (forward only), a 2 GB/s merge.",
        f"Over the {s['predicted_rows']} predicted rows the change against the reference is off by {f['median']:.2f} "
        f"percentage points at the median and {f['worst']:.2f} at worst (the training-only time model: "
        f"{t['median']:.2f} and {t['worst']:.2f}); the seconds by {s['forecast_seconds_error_pct']['median']:.1f} % "
        f"and {s['forecast_seconds_error_pct']['worst']:.1f} % (training only: "
        f"{s['training_only_seconds_error_pct']['median']:.1f} % and "
        f"{s['training_only_seconds_error_pct']['worst']:.1f} %).",
        misses(table)]
    return Section("The paper's time columns (Tables 8 and 10), forecast", text,
                   tables=[Table("forecast_paper_times", "Whole-run seconds: paper, forecast, training-only model",
                                 table, display)])


RECORDS = layout.sweep_dir(Path(__file__).resolve().parents[2] / "results", "fmnist_study")  # the study of issue 13
RECORDS_CPU = "AMD EPYC"  # the CPU cpu1t_w16_fmnist was calibrated on (its runs: AMD EPYC family 26, model 2)
FIT_SEEDS, SKIPPED_SEEDS = (2,), (0, 1)


def records_section(root: Path = RECORDS) -> Section | None:
    """The forecast against this machine's records (none when the records are not here)."""
    if not root.is_dir():
        return None
    rows, fit, terms = record_validation(root, RECORDS_CPU, FIT_SEEDS, SKIPPED_SEEDS)
    errors = rows["error_pct"].abs()
    text = [
        f"The committed study's runs on {RECORDS_CPU} (the CPU its profile `cpu1t_w16_fmnist` was calibrated on): "
        "each record's measured clock (`summary.json` `measured_time`: its mini-epochs' CPU seconds on the sync "
        "rules' clock) plus its evaluation seconds (`eval_time`), against the forecast's training clock plus its "
        "evaluation seconds. Two forecast terms are fitted on the seed-"
        + ", ".join(map(str, FIT_SEEDS)) + " runs only: `batch_time_fit` (t(B) = a·B + b per resolution, from the "
        "median CPU seconds per batch of whole mini-epochs) and `eval_per_image` (per resolution, non-negative least "
        "squares over the runs' evaluation seconds); seeds " + ", ".join(map(str, SKIPPED_SEEDS)) + " are left out "
        "because their records show other processes beside them (evaluation, a wall clock, took twice as long; "
        "`sweeps/fmnist_study.notes.md`). The hardware profile, and so every plan, is unchanged.",
        f"On the {len(rows)} held-out runs the forecast is off by {errors.median():.1f} % at the median and "
        f"{errors.max():.1f} % at worst. The forecast's own mini-epoch fit against the held-out records per "
        "resolution and batch is the second table: at 20 px it is off by "
        + " and ".join(f"{abs(v):.1f} %" for v in fit[fit["resolution"] == 20]["forecast_fit_error_pct"])
        + " where the profile is off by "
        + " and ".join(f"{abs(v):.1f} %" for v in fit[fit["resolution"] == 20]["profile_error_pct"])
        + "; the seed-to-seed drift of this machine's speed (about ±10 % over minutes) bounds what one seed's fit "
        "can do."]
    shown = rows.drop(columns=["run"]).copy()
    for column in shown.columns.drop(["scheme", "seed"]):
        shown[column] = shown[column].map(lambda v: num(v, 2, column == "error_pct"))
    fit_shown = fit.copy()
    for column in fit.columns.drop(["resolution", "batch_size", "mini_epochs"]):
        fit_shown[column] = fit_shown[column].map(lambda v: num(v, 3, column.endswith("pct")))
    return Section("This machine's records, forecast", text, tables=[
        Table("forecast_records", "Held-out study runs: record (measured clock + evaluation) against the forecast",
              rows, shown),
        Table("forecast_mini_epoch_fit", "Mini-epoch seconds on the held-out records: measured median, the profile's "
              "model, the forecast's own fit", fit, fit_shown)])


DISTRIBUTED = Path(__file__).resolve().parents[2] / "results" / "forecast_check"  # just forecast-check


def distributed_figure(parts: pd.DataFrame, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = list(dict.fromkeys(parts["scheme"]))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, scheme in enumerate(schemes):
        rows = parts[parts["scheme"] == scheme].set_index("part")
        for j, (column, label) in enumerate((("measured_s", "measured"), ("forecast_s", "forecast"))):
            bottom = 0.0
            for k, part in enumerate(distributed_runs.PARTS):
                value = rows.loc[part, column]
                ax.bar(i + 0.2 * (2 * j - 1), value, 0.38, bottom=bottom, color=f"C{k}",
                       hatch="//" if j else None, edgecolor="white", label=part if i == 0 and j == 0 else None)
                bottom += value
            ax.text(i + 0.2 * (2 * j - 1), bottom, label, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(schemes)), schemes)
    ax.margins(y=0.12)  # room for the bars' labels under the legend
    ax.set_ylabel("seconds per worker (mean over the workers)")
    ax.legend(fontsize=8, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    figure = save_figure(fig, out, "distributed_parts", "Each distributed run's workers: where their time went, "
                         "measured (left bar) and forecast (right, hatched), in seconds per worker")
    plt.close(fig)
    return figure


def calibrations_table(measured: dict) -> pd.DataFrame:
    """What each measurement of the terms found (the training step at the largest resolution's batch of 64)."""
    rows = []
    for k, t in measured.items():
        px = max(t.batch_time_fit) if t.batch_time_fit else None
        rows.append({"calibration": k, "train_batch64_s": (t.batch_time_fit[px][0] * 64 + t.batch_time_fit[px][1])
                     if px else None, "test_ms_per_image": 1e3 * t.eval_per_image.get(px, float("nan")),
                     "latency_ms": 1e3 * t.latency_s, "link_gbit": t.link_gbit, "merge_gbyte_s": t.merge_gbyte_s,
                     "startup_s": t.startup_s, "shared_cores": t.shared_cores, "core_efficiency": t.core_efficiency})
    return pd.DataFrame(rows)


def distributed_section(out: Path, figures: bool, root: Path = DISTRIBUTED) -> Section | None:
    """The forecast against distributed runs made here (none when their records are not here)."""
    if not distributed_runs.runs(root):
        return None
    rows, parts, measured = distributed_runs.validation(root)
    per = rows.groupby("calibration")["error_pct"]
    within = sum(bool((g.abs() <= 10).all()) for _, g in per)
    cal = calibrations_table(measured)
    px = max(next(iter(measured.values())).batch_time_fit or {0: 0})
    text = [
        "The study's regime (`experiment=fmnist_study`, 48 epochs, 192 commits) run with `executor=distributed` on "
        "this machine: a server and 4 worker processes of one thread each on its 2 cores (`just forecast-check`), "
        f"{len(rows['scheme'].unique())} runs ({', '.join(rows['scheme'].unique())}) one after another on the "
        "otherwise quiet machine. The terms come from `dbsl calibrate --terms-only` alone: the tests per resolution, "
        "the merge, a call's fixed cost and the link over TensorPipe on 127.0.0.1, the start-up and shut-down of the "
        "executor's own processes, the training step timed again at the plan's batch sizes (`batch_time_fit`), the "
        "shared cores and their efficiency. Nothing is fitted to the runs.",
        f"The terms were measured {len(measured)} times, minutes apart, on the same quiet machine (calibration 1 "
        "just before the runs, by the first version of the measurement, which had no core-efficiency probe, so 1.0; "
        "2 and 3 just after). They differ: the training step at "
        f"{px} px and batch 64 took {span_s(cal['train_batch64_s'])} s, the core efficiency came out "
        f"{span_s(cal['core_efficiency'], 3)}. That drift of this machine, not a missing term, sets how close a "
        "forecast can get here. Every calibration forecasts every run: "
        + "; ".join(f"calibration {k}: {span(g)} %" for k, g in per) + f" against the records' wall time. {within} of "
        f"the {len(measured)} calibrations put all runs within the 10 % goal. " + efficiency_sentence(root, measured)
        + " " + change_sentence(rows) + " The training-only time model (the "
        "simulated executor's clock, which knows neither the shared cores nor the tests) gives "
        + ", ".join(f"{r.training_only_s:.0f} s for the {r.scheme} run of {r.wall_s:.0f} s"
                    for r in rows[rows["calibration"] == max(measured)].itertuples()) + "."]
    shown = rows.copy()
    for column in shown.columns.drop(["calibration", "scheme", "seed", "commits"]):
        shown[column] = shown[column].map(lambda v: num(v, 2 if column.endswith("pct") else 1, column.endswith("pct")))
    cal_shown = cal.copy()
    for column in cal.columns.drop("calibration"):
        cal_shown[column] = cal_shown[column].map(lambda v: num(v, 3))
    parts_shown = parts.assign(measured_s=parts["measured_s"].map(lambda v: num(v, 1)),
                               forecast_s=parts["forecast_s"].map(lambda v: num(v, 1)))
    return Section("Distributed runs on this machine, forecast", text, tables=[
        Table("forecast_distributed", "Distributed runs: whole-run wall time against each calibration's forecast",
              rows, shown),
        Table("forecast_calibrations", "The measurements of the terms (calibrate --terms-only), minutes apart", cal,
              cal_shown),
        Table("forecast_distributed_parts", f"The workers' time by part (mean seconds per worker): measured and "
              f"forecast with calibration {max(measured)}", parts, parts_shown)],
        figures=[distributed_figure(parts, out)] if figures else [])


def change_sentence(rows: pd.DataFrame) -> str:
    """Each scheme's change against the baseline: measured (the records) and forecast (by each calibration)."""
    parts = []
    for scheme in [x for x in rows["scheme"].unique() if x != "baseline"]:
        forecast = []
        for k, g in rows.groupby("calibration"):
            g = g.set_index("scheme")
            forecast.append(100 * (g.loc[scheme, "forecast_s"] / g.loc["baseline", "forecast_s"] - 1))
        g = rows[rows["calibration"] == rows["calibration"].min()].set_index("scheme")
        measured = 100 * (g.loc[scheme, "wall_s"] / g.loc["baseline", "wall_s"] - 1)
        parts.append(f"{scheme} {measured:+.1f} % measured, {min(forecast):+.1f} to {max(forecast):+.1f} % forecast")
    return ("The change against the baseline, which one calibration's drift moves for every scheme alike, comes out "
            "closer: " + "; ".join(parts) + ".")


def efficiency_sentence(root: Path, measured: dict) -> str:
    """What the calibrations whose core efficiency is not 1 would forecast with 1 (the probe's noisiest term)."""
    parts = []
    for k, terms in measured.items():
        if terms.core_efficiency != 1.0:
            plain = dataclasses.replace(terms, core_efficiency=1.0)
            errors = pd.Series([distributed_runs.compare(run, plain)[0]["error_pct"]
                                for run in distributed_runs.runs(root)])
            parts.append(f"calibration {k} ({terms.core_efficiency:.3f}) would give {span(errors)} %")
    return ("The core efficiency is the noisiest term (the same batches alone and on every worker at once, a few "
            "seconds each): with 1.0 instead, " + "; ".join(parts) + ".") if parts else ""


def span_s(values: pd.Series, digits: int = 3) -> str:
    return f"{values.min():.{digits}f} to {values.max():.{digits}f}"


def capacity_figure(name: str, table: pd.DataFrame, out: Path, about: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for link, rows in table[table["stopped"] == ""].groupby("link_gbit"):
        line, = left.plot(rows["workers"], rows["epoch_s"], marker="o", label=f"{link:g} Gbit/s server link")
        right.plot(rows["workers"], rows["speedup"], marker="o", color=line.get_color())
        sat = cap.saturation(table, link)
        if sat is not None:
            at = rows[rows["workers"] == sat[0]]
            left.scatter(at["workers"], at["epoch_s"], s=160, facecolors="none", edgecolors="red", zorder=3)
    stops = table[table["stopped"] != ""]["workers"]
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("workers n (each keeps B_L; an epoch's images split n ways)")
        if len(stops):
            axis.axvline(stops.min(), color="grey", linestyle=":", label=f"no plan from n = {stops.min()}")
    left.set_yscale("log")
    left.set_ylabel("forecast seconds per epoch")
    right.set_ylabel("forecast speed-up against n = 1")
    left.legend(fontsize=8)
    fig.suptitle(f"FORECAST, not measured: {name}", fontsize=10)
    figure = save_figure(fig, out, f"capacity_{name}", f"{about}: forecast time per epoch and speed-up against the "
                         "number of workers (red circle: the server saturated, its link or its merge busy at least "
                         f"{cap.SATURATED:.0%} of the run)")
    plt.close(fig)
    return figure


def capacity_sentence(name: str, table: pd.DataFrame) -> str:
    parts = []
    for link in sorted(table["link_gbit"].unique()):
        pays, sat = cap.last_paying(table, link), cap.saturation(table, link)
        parts.append(f"with a {link:g} Gbit/s server link, more than {pays} workers do not pay (doubling them speeds "
                     f"the run up by less than {cap.PAYS - 1:.0%})" if pays else
                     f"with a {link:g} Gbit/s server link every doubling up to the last n pays")
        if sat:
            parts[-1] += f", and the server's {sat[1]} saturates at n = {sat[0]}"
    stopped = table[table["stopped"] != ""]
    tail = f" From n = {stopped['workers'].min()} on no plan can be built: {stopped['stopped'].iloc[0].rstrip('.')}." \
        if len(stopped) else ""
    return f"**{name}**: " + "; ".join(parts) + "." + tail


def capacity_section(out: Path, figures: bool) -> Section:
    text = ["How the server scales, by forecast: every worker keeps its B_L, an epoch's images are split among n "
            "workers, so a commit's training shrinks as 1/n while its push, pull, merge and test do not. The "
            "default terms, with the server's link at 10 and 100 Gbit/s. It is a forecast, not a measurement."]
    tables, figs = [], []
    for name, (overrides, about) in CAPACITY.items():
        table = cap.capacity(overrides)
        text.append(capacity_sentence(name, table))
        display = table.assign(epoch_s=table.get("epoch_s").map(lambda v: num(v, 2)),
                               speedup=table.get("speedup").map(lambda v: num(v, 2)),
                               server_link_busy=table.get("server_link_busy").map(lambda v: num(v, 3)),
                               merge_busy=table.get("merge_busy").map(lambda v: num(v, 3)))
        tables.append(Table(f"capacity_{name}", f"Capacity forecast: {about}", table, display))
        if figures:
            figs.append(capacity_figure(name, table, out, about))
    return Section("The server's capacity against n (forecast)", text, tables=tables, figures=figs)


def build_forecast_report(out: Path | str, figures: bool = True, force: bool = False) -> List[Section]:
    """Write the forecast report to ``out`` (the same folder rules and staging as every report)."""
    check_out(out, [], force)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    work = staging_folder(out)
    try:
        page = [paper_section(), records_section(), distributed_section(work, figures),
                capacity_section(work, figures)]
        page = [section for section in page if section is not None]
        for section in page:
            for table in section.tables:
                table.write(work / "tables")
        (work / "README.md").write_text(readme(TITLE, page))
        (work / "index.html").write_text(index_html(TITLE, page))
        install(work, out, force)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return page
