"""Training-parameter tables (the paper's Tables 2 and 6): B_S per resolution, d_S, d_L and f for every k and n_S,
derived by :func:`dbsl.plan.build_plan` (Eqs. 4-8), never transcribed."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Iterable, Sequence

import pandas as pd

from ..compose import compose_config
from ..config import Config, ConfigError
from ..plan import build_plan, dataset_size
from .render import Table

# the paper's parameter tables: (file stem, title, preset overrides, k values)
PAPER_PRESETS = (
    ("params_paper_table2", "Table 2 (derived): COMPSAC CIFAR-100, GTX 1080, B_L 500",
     ["experiment=compsac_cifar100"], (1.05, 1.1)),
    ("params_paper_table6_cifar100", "Table 6 (derived): CIFAR-100, GTX 1080, k=1.05",
     ["experiment=paper_cifar100"], (1.05,)),
    ("params_paper_table6_imagenet", "Table 6 (derived): ImageNet, RTX 3090 AMP, k=1.05",
     ["experiment=paper_imagenet"], (1.05,)),
)


def parameter_rows(cfg: Config, size: int, ks: Iterable[float]) -> pd.DataFrame:
    """One row per (k, n_S = 1..n): the plan's B_S at every resolution (with CPL on, so all appear), d_S, d_L, f."""
    n = cfg.ps.num_workers
    resolutions = list(cfg.schedule.resolutions)
    rows = []
    for k in sorted(set(ks)):
        for n_small in range(1, n + 1):
            trial = dataclasses.replace(
                cfg, scheme=dataclasses.replace(cfg.scheme, dual_batch=True, cyclic=True),
                dbsl=dataclasses.replace(cfg.dbsl, num_small=n_small, extra_time_ratio=float(k)))
            row = {"extra_time_ratio": float(k), "num_small": n_small, "num_large": n - n_small}
            try:
                plan = build_plan(trial, size)
            except ConfigError as err:  # an impossible budget: listed, with the reason
                row["note"] = str(err).split(";")[0]
                rows.append(row)
                continue
            for phase in plan.phases:
                row[f"batch_small_{phase.resolution}"] = phase.batch_small
                row[f"batch_large_{phase.resolution}"] = phase.batch_large
            row.update(data_small=plan.data_small, data_large=plan.data_large,
                       data_ratio=plan.data_small / plan.data_large, update_factor=plan.update_factor_small,
                       note="")
            rows.append(row)
    frame = pd.DataFrame(rows)
    ordered = ["extra_time_ratio", "num_small", "num_large"]
    ordered += [c for r in resolutions for c in (f"batch_small_{r}", f"batch_large_{r}") if c in frame]
    ordered += [c for c in ("data_small", "data_large", "data_ratio", "update_factor", "note") if c in frame]
    return frame[ordered]


def parameter_table(name: str, title: str, cfg: Config, size: int, ks: Sequence[float]) -> Table:
    data = parameter_rows(cfg, size, ks)
    display = pd.DataFrame({"k": data["extra_time_ratio"].map(lambda v: f"{v:g}"),
                            "n_S/n_L": data["num_small"].astype(str) + "/" + data["num_large"].astype(str)})
    for r in cfg.schedule.resolutions:
        if f"batch_small_{r}" in data:
            b_large = data[f"batch_large_{r}"].dropna()
            header = f"B_S @{r}px (B_L {int(b_large.iloc[0])})" if len(b_large) else f"B_S @{r}px"
            display[header] = data[f"batch_small_{r}"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for column, header, fmt in (("data_small", "d_S", "{:.0f}"), ("data_large", "d_L", "{:.0f}"),
                                ("data_ratio", "d_S/d_L", "{:.3f}"),
                                ("update_factor", f"f ({cfg.ps.update_factor})", "{:.3f}")):
        if column in data:
            display[header] = data[column].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
    if "note" in data and data["note"].fillna("").str.len().any():
        display["note"] = data["note"].fillna("")
    notes = [f"d={size} training samples, n={cfg.ps.num_workers} workers, hardware profile {cfg.hardware.name}, "
             f"rounding {cfg.dbsl.rounding}; B_S from Eq. 8 per resolution, d_L=k·d/n, d_S=(d-n_L·d_L)/n_S."]
    return Table(name, title, data, display, notes)


def paper_parameter_tables() -> list[Table]:
    """Tables 2 and 6 derived from the paper presets' coefficients (no run needed)."""
    tables = []
    for name, title, overrides, ks in PAPER_PRESETS:
        with warnings.catch_warnings():  # the calibrated-profile search path may not exist here: not needed
            warnings.filterwarnings("ignore", message=".*searchpath.*")
            cfg = compose_config(overrides)
        tables.append(parameter_table(name, title, cfg, dataset_size(cfg), ks))
    return tables
