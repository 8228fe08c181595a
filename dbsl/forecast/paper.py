"""The forecast against the paper's time columns (Tables 8 and 10: the whole-run seconds of 20 runs).

Every term comes from the paper or the plan (the paper's time coefficients, 1 Gbps links, the test sets, the step
counts) except one named scalar per table, ``commit_overhead_s`` (a fixed cost of every mini-epoch on a worker),
fitted on the table's reference row only (DBL n_S=0) so that the forecast equals its seconds. The other 18 rows are
predicted, and set beside the training-only time model (the plan's clock) on the same rows.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

import pandas as pd

from ..compose import compose_config
from ..plan import build_plan, dataset_size
from . import ForecastTerms, forecast_run, training_time
from .terms import load_terms

EXPERIMENTS = {8: "paper_cifar100", 10: "paper_imagenet"}  # the paper's time tables and dbsl's presets of them
FITTED = "commit_overhead_s"


def overrides(table: int, scheme: str, num_small: int) -> List[str]:
    return [f"experiment={EXPERIMENTS[table]}", f"scheme={scheme}", f"dbsl.num_small={num_small}"]


def fit_term(cfg, seconds: float, terms: ForecastTerms, name: str = FITTED,
             tolerance: float = 1e-6) -> ForecastTerms:
    """The value of the term ``name`` at which the forecast of ``cfg`` takes ``seconds`` (bisection over [0, inf):
    the whole-run time grows with every term). A forecast above ``seconds`` even at 0 gives 0."""
    def at(value: float) -> float:
        return forecast_run(cfg, replace(terms, **{name: value})).seconds

    if at(0.0) >= seconds:
        return replace(terms, **{name: 0.0})
    low, high = 0.0, 1.0
    while at(high) < seconds:
        low, high = high, 2 * high
    while high - low > tolerance * max(1.0, high):
        middle = (low + high) / 2
        low, high = (middle, high) if at(middle) < seconds else (low, middle)
    return replace(terms, **{name: (low + high) / 2})


def fitted_terms(paper: pd.DataFrame, table: int) -> ForecastTerms:
    """The table's terms with ``commit_overhead_s`` fitted on its reference row (DBL n_S=0)."""
    ref = paper[(paper["table"] == table) & (paper["scheme"] == "dbsl") & (paper["num_small"] == 0)].iloc[0]
    cfg = compose_config(overrides(table, "dbsl", 0))
    terms = fit_term(cfg, float(ref["time_s"]), load_terms(cfg.hardware.name))
    return replace(terms, source=f"{terms.source}; {FITTED}={getattr(terms, FITTED):.4g} fitted to Table {table} "
                                 f"DBL n_S=0 ({float(ref['time_s']):.1f} s)")


def validation(paper: pd.DataFrame, tables=(8, 10)) -> pd.DataFrame:
    """One row per run of the paper's time tables (``paper``: dbsl/report/paper_results.csv): paper, forecast and
    training-only seconds and changes against the table's reference row, with the errors (percentage points of
    change, % of seconds)."""
    rows: List[Dict] = []
    for table in tables:
        terms = fitted_terms(paper, table)
        runs = paper[(paper["table"] == table) & paper["time_s"].notna()]
        ref_paper = float(runs[(runs["scheme"] == "dbsl") & (runs["num_small"] == 0)]["time_s"].iloc[0])
        ref_cfg = compose_config(overrides(table, "dbsl", 0))
        ref_forecast, ref_train = forecast_run(ref_cfg, terms).seconds, training_time(ref_cfg)
        for _, run in runs.iterrows():
            cfg = compose_config(overrides(table, run["scheme"], int(run["num_small"])))
            plan = build_plan(cfg, dataset_size(cfg))
            seconds, train = forecast_run(cfg, terms, plan=plan).seconds, training_time(cfg, plan)
            paper_s = float(run["time_s"])
            rows.append({
                "table": table, "scheme": "DBL" if run["scheme"] == "dbsl" else "hybrid",
                "num_small": int(run["num_small"]), "reference": run["scheme"] == "dbsl" and run["num_small"] == 0,
                "paper_s": paper_s, "forecast_s": seconds, "training_only_s": train,
                "paper_change_pct": 100 * (paper_s / ref_paper - 1),
                "forecast_change_pct": 100 * (seconds / ref_forecast - 1),
                "training_only_change_pct": 100 * (train / ref_train - 1),
                f"fitted_{FITTED}": getattr(terms, FITTED)})
    out = pd.DataFrame(rows)
    out["forecast_change_error_pp"] = out["forecast_change_pct"] - out["paper_change_pct"]
    out["training_only_change_error_pp"] = out["training_only_change_pct"] - out["paper_change_pct"]
    out["forecast_seconds_error_pct"] = 100 * (out["forecast_s"] / out["paper_s"] - 1)
    out["training_only_seconds_error_pct"] = 100 * (out["training_only_s"] / out["paper_s"] - 1)
    return out


def summary(table: pd.DataFrame) -> dict:
    """Median and worst absolute errors over the predicted rows (the references are fitted, not predicted)."""
    predicted = table[~table["reference"]]
    out = {"predicted_rows": int(len(predicted))}
    for column in ("forecast_change_error_pp", "training_only_change_error_pp", "forecast_seconds_error_pct",
                   "training_only_seconds_error_pct"):
        errors = predicted[column].abs()
        out[column] = {"median": float(errors.median()), "worst": float(errors.max())}
    return out
