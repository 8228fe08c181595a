"""What a calibration leaves for the report in ``results/calibration/<name>/``, each file written atomically:

batch_times.csv  resolution, batch_size, seconds (median per batch), min_s, max_s, steps, repeats, line_s, table_s
memory.csv       resolution, batch_size, bytes (the memory predictor's points)
fit.csv          per resolution: a, b, r2, worst_residual, line problems, B_L, memory predictor, max batches
validation.csv   Table 4: resolution, batch_size, data, steps, predicted_s, measured_s, rel_error, role, ...
fit.png          measured per-batch times with the fitted lines (and tables), and the relative residuals
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..record import write_atomic
from .fit import ResolutionFit


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    write_atomic(path, pd.DataFrame(list(rows)).to_csv(index=False))
    return path


def batch_time_rows(fits: Sequence[ResolutionFit]) -> list[dict]:
    rows = []
    for f in fits:
        for t, table in zip(f.timings, f.table_times):
            rows.append({"resolution": f.resolution, "batch_size": t.batch_size, "seconds": t.seconds,
                         "min_s": t.min_s, "max_s": t.max_s, "steps": t.steps, "repeats": t.repeats,
                         "line_s": f.a * t.batch_size + f.b, "table_s": table})
    return rows


def memory_rows(fits: Sequence[ResolutionFit]) -> list[dict]:
    return [{"resolution": f.resolution, "batch_size": b, "bytes": m} for f in fits for b, m in f.memory_points]


def fit_rows(fits: Sequence[ResolutionFit], kind: str) -> list[dict]:
    rows = []
    for f in fits:
        mem = f.memory
        rows.append({"resolution": f.resolution, "a": f.a, "b": f.b, "r2": f.r2, "worst_residual": f.worst_residual,
                     "line_ok": not f.line_problems, "problems": "; ".join(f.line_problems), "kind": kind,
                     "batch_large": f.batch_large, "memory_intercept": mem.intercept if mem else None,
                     "memory_slope": mem.slope if mem else None, "memory_r2": mem.r2 if mem else None,
                     "memory_budget": f.memory_budget, "predicted_max_batch": f.predicted_max_batch,
                     "probed_max_batch": f.probed_max_batch})
    return rows


def plot_fit(path: Path, fits: Sequence[ResolutionFit], kind: str, title: str) -> Path:
    """Left: measured seconds per batch against B with the fitted line (and the table when it is the model);
    right: the line's relative residual at each measured point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, f in enumerate(fits):
        color = f"C{i}"
        x = np.array(f.batch_sizes, float)
        y = np.array(f.seconds)
        lo = np.array([t.min_s for t in f.timings])
        hi = np.array([t.max_s for t in f.timings])
        left.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", ms=4, color=color, capsize=2,
                      label=f"{f.resolution} px: a={f.a:.3g}, b={f.b:.3g}, R²={f.r2:.4f}")
        grid = np.linspace(0, x.max(), 100)
        left.plot(grid, f.a * grid + f.b, "-", color=color, lw=1)
        if kind == "table":
            left.plot(x, f.table_times, "--", color=color, lw=1)
        right.plot(x, (f.a * x + f.b - y) / y * 100, "o-", color=color, ms=4, label=f"{f.resolution} px")
    left.set(xlabel="batch size B", ylabel="seconds per batch", title=f"t(B) = a·B + b ({kind} model)")
    left.legend(fontsize=8)
    right.axhline(0, color="grey", lw=0.8)
    right.set(xlabel="batch size B", ylabel="(line − measured) / measured  [%]", title="relative residual")
    right.legend(fontsize=8)
    fig.suptitle(textwrap.fill(title, 160), fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path
