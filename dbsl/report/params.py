"""Training-parameter tables (the paper's Tables 2 and 6): B_S per resolution, d_S, d_L and f for every k and n_S,
derived by :func:`dbsl.plan.build_plan` (Eqs. 4-8), never transcribed: of the runs' configs, and of the paper's
presets."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..compose import compose_config
from ..config import Config, ConfigError, config_from_yaml
from ..plan import build_plan, dataset_size
from .collect import RunSet, is_reference
from .render import Table, slug

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


def recorded_config(runset: RunSet, run_dir: str) -> tuple[Config, int] | None:
    """A run's config.yaml and the d its plan divided (the plan's, else the config's); None when the record has no
    config.yaml. A config that cannot be read raises what :func:`dbsl.config.config_from_yaml` raises."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return None
    cfg = config_from_yaml(path)
    size = runset.runs.set_index("run_dir")["dataset_size"].get(run_dir)
    return cfg, int(size) if pd.notna(size) else dataset_size(cfg)


def preset_config(overrides: Sequence[str]) -> Config:
    """The config of a preset (e.g. experiment=paper_cifar100), composed as a run would be."""
    with warnings.catch_warnings():  # the calibrated-profile search path may not exist here: not needed
        warnings.filterwarnings("ignore", message=".*searchpath.*")
        return compose_config(list(overrides))


def run_parameter_tables(runset: RunSet, groups: pd.DataFrame, problems: list | None = None) -> list[Table]:
    """Training parameters (Table 2/6 layout) of each experiment's parameter-server runs (not the one-process
    reference), from a run's config.yaml, for the k values its runs used; settings that give the same table are
    shown once. Configs that cannot be read go to
    ``problems``."""
    problems = [] if problems is None else problems
    tables = []
    for experiment, part in groups[~groups["num_workers"].map(is_reference)].groupby("experiment", sort=True):
        seen = set()
        for _, setup in part.groupby("setup", sort=True):
            run_dir = setup["run_dirs"].iloc[0][0]
            try:
                recorded = recorded_config(runset, run_dir)
            except Exception as err:  # noqa: BLE001 - e.g. a record of an older config schema: no table, named
                problems.append(f"{run_dir}/config.yaml: no training-parameter table ({type(err).__name__})")
                continue
            if recorded is None:
                continue
            cfg, size = recorded
            ks = sorted(set(setup.loc[setup["num_small"] > 0, "extra_time_ratio"])) or [cfg.dbsl.extra_time_ratio]
            suffix = f" ({len(seen) + 1})" if seen else ""
            table = parameter_table(f"params_{slug(experiment)}{suffix.replace(' (', '_').rstrip(')')}",
                                    f"Training parameters: {experiment}{suffix}", cfg, size, ks)
            fingerprint = table.data.to_csv()
            if fingerprint not in seen:
                seen.add(fingerprint)
                tables.append(table)
    return tables


def paper_parameter_tables() -> list[Table]:
    """Tables 2 and 6 derived from the paper presets' coefficients (no run needed)."""
    tables = []
    for name, title, overrides, ks in PAPER_PRESETS:
        cfg = preset_config(overrides)
        tables.append(parameter_table(name, title, cfg, dataset_size(cfg), ks))
    return tables
