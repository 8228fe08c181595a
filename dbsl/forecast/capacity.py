"""How far the parameter server scales, by forecast: time per epoch and speed-up against n = 1 ... 1,024 workers.

Scaling rule: every worker keeps its B_L (and the plan its epochs), and one epoch's d images are split among more
workers (d/n each), so a commit's training shrinks as 1/n while its push, pull, merge and test do not. The server's
inbound and outbound links carry one model per commit each; past some n they are busy all the time (saturated) and
more workers only queue. A plan that cannot be built (B_L above a worker's d/n) ends the curve, with the reason.
This is a forecast, not a measurement.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

import pandas as pd

from ..compose import compose_config
from ..plan import build_plan, dataset_size
from ..config import ConfigError
from . import ForecastTerms, forecast_run
from .terms import load_terms

WORKERS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LINKS_GBIT = (10.0, 100.0)
SATURATED = 0.95  # a link busy this share of the run is saturated
PAYS = 1.1  # doubling the workers "pays" while it speeds the run up by at least this factor


def buildable(overrides: Sequence[str], n: int) -> Optional[str]:
    """None when the plan of ``overrides`` with n workers can be built, else why not."""
    try:
        cfg = compose_config(list(overrides) + [f"ps.num_workers={n}"])
        build_plan(cfg, dataset_size(cfg))
    except ConfigError as err:  # BudgetError: B_L above d/n (the message says which)
        return str(err)
    return None


def workers_to_try(overrides: Sequence[str], workers: Sequence[int]) -> List[int]:
    """``workers`` up to the first n without a plan, with the largest n that has one inserted before it."""
    out: List[int] = []
    for n in workers:
        if buildable(overrides, n) is not None:
            low, high = (out[-1], n) if out else (0, n)
            while high - low > 1:  # the largest buildable n between the last good one and this one
                middle = (low + high) // 2
                low, high = (middle, high) if buildable(overrides, middle) is None else (low, middle)
            return out + ([low] if low > (out[-1] if out else 0) else []) + [high]
        out.append(n)
    return out


def capacity(overrides: Sequence[str], workers: Sequence[int] = WORKERS, links: Sequence[float] = LINKS_GBIT,
             terms: Optional[ForecastTerms] = None) -> pd.DataFrame:
    """One row per (link, n): seconds per epoch, speed-up against n = 1, the share of the run the server's
    busiest part (a link or the merge) is busy; the first n whose plan cannot be built carries only the reason."""
    rows: List[Dict] = []
    tried = workers_to_try(overrides, workers)
    for link in links:
        first: Optional[float] = None
        for n in tried:
            why = buildable(overrides, n)
            if why is not None:
                rows.append({"link_gbit": link, "workers": n, "stopped": why})
                break
            cfg = compose_config(list(overrides) + [f"ps.num_workers={n}"])
            f = forecast_run(cfg, replace(terms or load_terms(cfg.hardware.name), link_gbit=link))
            epoch = f.seconds / cfg.schedule.epochs
            first = first or epoch
            busy = f.server_busy()
            rows.append({"link_gbit": link, "workers": n, "epoch_s": epoch, "speedup": first / epoch,
                         "server_link_busy": max(busy["inbound"], busy["outbound"]), "merge_busy": busy["merge"],
                         "stopped": ""})
    return pd.DataFrame(rows)


def saturation(table: pd.DataFrame, link: float) -> Optional[tuple]:
    """(the fewest workers at which a part of the server is saturated, which part), or None within the curve."""
    rows = table[(table["link_gbit"] == link) & (table["stopped"] == "")].sort_values("workers")
    for row in rows.itertuples():
        for part, busy in (("link", row.server_link_busy), ("merge", row.merge_busy)):
            if busy >= SATURATED:
                return int(row.workers), part
    return None


def last_paying(table: pd.DataFrame, link: float) -> Optional[int]:
    """The most workers worth having: beyond it, doubling them speeds the run up by less than ``PAYS``."""
    rows = table[(table["link_gbit"] == link) & (table["stopped"] == "")].sort_values("workers")
    speedups = list(zip(rows["workers"], rows["speedup"]))
    for (n, s), (n_next, s_next) in zip(speedups, speedups[1:]):
        if s_next < PAYS ** math.log2(n_next / n) * s:  # PAYS per doubling (the last step may be shorter)
            return int(n)
    return None
