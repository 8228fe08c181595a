"""How the runs' protocol departs from the paper's (its CIFAR-100 Table 8 setup): the facts the report can compute
from the runs' config.yaml, plan and metrics.csv beside the same facts of the paper preset (experiment=
paper_cifar100, built from the paper), plus the deviations a pre-registration declares and the realised stage-change
latency of ASP (:mod:`.schedule`)."""
from __future__ import annotations

import dataclasses

import pandas as pd

from ..config import Config
from ..plan import Plan, build_plan, dataset_size
from .collect import is_reference
from .params import parameter_rows, preset_config, recorded_config
from .render import Table, slug
from .schedule import latency_summary

PAPER_PRESET = "paper_cifar100"
# not in the preset (the dbsl default amp=true acts on CUDA only): paper digest, item 13
PAPER_PRECISION = "FP32 (GTX 1080; the paper used AMP only for ImageNet)"


def samples_per_epoch(plan: Plan, num_small: int) -> float:
    """Samples an epoch trains in the plan's last phase (the highest resolution): n_L round(d_L/B_L) B_L +
    n_S round(d_S/B_S) B_S, against the d the plan divides."""
    phase = plan.phases[-1]
    large = (plan.num_workers - num_small) * phase.steps_large * phase.batch_large
    return float(large + (num_small * phase.steps_small * phase.batch_small if num_small else 0))


def _dual(cfg: Config, num_small: int) -> Config:
    return dataclasses.replace(cfg, scheme=dataclasses.replace(cfg.scheme, dual_batch=True, cyclic=False),
                               dbsl=dataclasses.replace(cfg.dbsl, num_small=num_small))


def facts(cfg: Config, size: int, num_small: int = 2) -> dict:
    """The protocol facts of one config (the plan's B_L and B_S/B_L per resolution at ``num_small``)."""
    params = parameter_rows(cfg, size, [cfg.dbsl.extra_time_ratio])
    row = params[params["num_small"] == num_small]
    ratios, larges = [], []
    for r in cfg.schedule.resolutions:
        if not row.empty and f"batch_large_{r}" in row and pd.notna(row[f"batch_large_{r}"].iloc[0]):
            b_l, b_s = int(row[f"batch_large_{r}"].iloc[0]), row[f"batch_small_{r}"].iloc[0]
            larges.append(f"{b_l} @{r} px")
            ratios.append(f"{b_s / b_l:.3f} @{r} px" if pd.notna(b_s) else f"- @{r} px")
    o = cfg.optim
    lr = f"{o.lr:g}, ×{o.lr_gamma:g} at epochs {', '.join(map(str, o.lr_milestones)) or '-'}"
    if o.warmup_epochs:
        lr += f"; warm-up {o.warmup_epochs:g} epochs from {o.warmup_start_lr:g}" + (
            " (baseline only)" if o.warmup_baseline_only else "")
    test = f"{cfg.dataset.num_test:,} (a seeded subset)" if cfg.dataset.num_test else "the full test set"
    base_plan = build_plan(dataclasses.replace(cfg, scheme=dataclasses.replace(cfg.scheme, dual_batch=False,
                                                                                cyclic=False)), size)
    try:
        dual_plan = build_plan(_dual(cfg, num_small), size)
        dual = samples_per_epoch(dual_plan, num_small)
    except Exception:  # noqa: BLE001 - an impossible budget: no figure
        dual = float("nan")
    base = samples_per_epoch(base_plan, 0)
    return {
        "epochs": str(cfg.schedule.epochs),
        "training data": f"{cfg.dataset.name}, {size:,} images" + (" (a seeded subset)" if cfg.dataset.num_train
                                                                   else ""),
        "test data": test,
        "model": f"{cfg.model.name}, width {cfg.model.width}, {cfg.model.stem} stem",
        "workers (n)": str(cfg.ps.num_workers),
        "resolutions (CPL cycle)": " → ".join(f"{r} px" for r in cfg.schedule.resolutions),
        "B_L": ", ".join(larges),
        f"B_S/B_L at n_S = {num_small}": ", ".join(ratios),
        "k": f"{cfg.dbsl.extra_time_ratio:g}",
        "samples trained per epoch": (f"baseline {base:,.0f} ({100 * (base / size - 1):+.1f} % of d); n_S = "
                                      f"{num_small}: {dual:,.0f} ({100 * (dual / base - 1):+.1f} % of the "
                                      "baseline's), from the rounded step counts"),
        "LR schedule": lr,
        "augmentation": cfg.dataset.augment,
        "evaluation": f"every {cfg.train.eval_every} commit(s), on {test}",
    }


def protocol_table(experiment: str, run_dirs: list, cfg: Config, size: int, declared: list | None = None,
                   num_small: int = 2) -> Table:
    """Deviations from the paper's protocol of one experiment's runs (``cfg``: the config of its PS baseline)."""
    paper_cfg = preset_config([f"experiment={PAPER_PRESET}"])
    here, paper = facts(cfg, size, num_small), facts(paper_cfg, dataset_size(paper_cfg), num_small)
    rows = [{"aspect": k, "paper": paper[k], "here": here[k], "source": "computed"} for k in here]
    rows.insert(len(rows) - 1, {"aspect": "precision", "paper": PAPER_PRECISION,
                                "here": "FP32" if not cfg.train.amp else "FP32 on a CPU (train.amp acts on CUDA only)",
                                "source": "computed"})
    rows.append({"aspect": "stage-change latency (ASP)",
                 "paper": "the same mechanism (a worker keeps its settings until its next pull); not reported",
                 "here": latency_summary(run_dirs) or "no metrics.csv with phases", "source": "metrics.csv"})
    for item in declared or []:
        rows.append({"aspect": str(item["aspect"]), "paper": str(item.get("paper", "")),
                     "here": str(item.get("here", "")) + (f" ({item['why']})" if item.get("why") else ""),
                     "source": "pre-registration"})
    data = pd.DataFrame(rows)
    data["differs"] = data["paper"] != data["here"]
    display = data[["aspect", "paper", "here", "source"]]
    notes = [f"Paper: the preset experiment={PAPER_PRESET} (the paper's CIFAR-100 Table 8 setup, built from the "
             "paper and the authors' code), through the same plan (Eqs. 4-8); here: the config, plan and metrics.csv "
             "of this experiment's runs. Stage-change latency: mini-epochs committed after a milestone that still "
             "trained the previous phase (their worker pulled before it), counted from metrics.csv against the "
             "plan; the paper's fewer, longer mini-epochs per stage make the same few stale commits a smaller share."]
    return Table(f"protocol_{slug(experiment)}", f"Deviations from the paper's protocol: {experiment}", data,
                 display, notes)


def protocol_tables(runset, groups: pd.DataFrame, declared: list | None = None, num_small: int = 2) -> list[Table]:
    """One deviations table per experiment, from the config of its PS baseline (or first) group."""
    tables = []
    for experiment, part in groups.groupby("experiment", sort=True):
        ps = part[~part["num_workers"].map(is_reference)]
        if ps.empty:
            continue
        base = ps[ps["group"] == ps["baseline_group"]]
        first = (base if not base.empty else ps).iloc[0]["run_dirs"][0]
        try:
            recorded = recorded_config(runset, first)
        except Exception:  # noqa: BLE001 - an older config schema: no table
            continue
        if recorded is None:
            continue
        cfg, size = recorded
        run_dirs = [d for dirs in ps["run_dirs"] for d in dirs]
        tables.append(protocol_table(experiment, run_dirs, cfg, size, declared, num_small))
    return tables
