"""Benchmark 5: the share of a run's time spent evaluating, with dbsl's defaults (channels_last, inference_mode).

Interleaved sides, each a whole simulated run through :func:`dbsl.one_run.execute` (baseline scheme, 28 px,
ResNet-18 width 16) on a Fashion-MNIST subset:

- the full data set's 6 : 1 train : test proportion (so a test costs, relative to a mini-epoch, what it costs in a
  run on all of Fashion-MNIST), n = 4, batch 256, ``train.eval_every=1`` (the authors' setting) and ``=m``;
- the study preset's proportion, n, B_L, evaluation batch and ``train.eval_every`` (the CPU study tests the full
  10,000-image test set; its training set is a subset), with both sets scaled down by the same factor.

The share is the summary's ``eval_time / wall_time`` (wall seconds: the summary keeps no CPU seconds of evaluation).
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from dbsl.compose import compose_config
from dbsl.one_run import execute

from .common import dataset_overrides, pick, result, study
from .timing import interleave

NAME = "eval_cost"
TITLE = "Evaluation cost: share of run time spent testing"
FASHION_MNIST_TEST = 10000
SIZES = {
    "full": {"train": 3600, "test": 600, "epochs": 2, "every": 4, "width": 16, "resolution": 28, "batch": 256,
             "repeats": 3, "warmup": 0, "data": "auto", "study_scale": 5},
    "quick": {"train": 1200, "test": 200, "epochs": 1, "every": 4, "width": 16, "resolution": 28, "batch": 256,
              "repeats": 2, "warmup": 0, "data": "auto", "study_scale": 20},
    "tiny": {"train": 96, "test": 16, "epochs": 1, "every": 2, "width": 2, "resolution": 8, "batch": 8,
             "repeats": 1, "warmup": 0, "data": "synthetic"},
}
COLUMNS = [("variant", "proportion"), ("train", "train images"), ("test", "test images"), ("batch", "batch"),
           ("eval_every", "eval_every (m)"), ("evaluations", "tests"), ("wall_s", "run wall s"),
           ("eval_s", "eval s"), ("eval_share", "eval share of wall"), ("per_test_s", "s per test")]


def variants(p: dict) -> list[dict]:
    """The runs to compare: the full set's proportion at m = 1 and m = every, and (with a scale) the study's."""
    base = {"train": p["train"], "test": p["test"], "batch": p["batch"], "workers": 4, "eval_batch": 1000,
            "variant": f"full data set ({p['train'] // p['test']}:1)"}
    out = [dict(base, every=1), dict(base, every=p["every"])]
    if p.get("study_scale"):
        cfg, plan, source = study("baseline")
        train = plan.dataset_size // p["study_scale"]
        test = (cfg.dataset.num_test or FASHION_MNIST_TEST) // p["study_scale"]
        out.append({"train": train, "test": test, "batch": plan.phases[0].batch_large, "workers": plan.num_workers,
                    "every": cfg.train.eval_every, "eval_batch": cfg.train.eval_batch_size,
                    "variant": f"study ({plan.dataset_size}:{cfg.dataset.num_test or FASHION_MNIST_TEST}, /"
                               f"{p['study_scale']})", "source": source})
    return out


def config(p: dict, v: dict, run_dir: Path):
    r = p["resolution"]
    data = dataset_overrides(p["data"]) + [f"dataset.num_train={v['train']}", f"dataset.num_test={v['test']}"]
    if "dataset=synthetic" in data:
        data += [f"dataset.synthetic_train={v['train']}", f"dataset.synthetic_test={v['test']}"]
    return compose_config(["scheme=baseline", *data, f"model.width={p['width']}", f"ps.num_workers={v['workers']}",
                           f"schedule.epochs={p['epochs']}", "optim.lr_milestones=[]", f"schedule.resolutions=[{r}]",
                           "schedule.dropouts=[0.2]", f"schedule.batch_large=[{v['batch']}]", "schedule.cycle_ends=[]",
                           f"train.eval_every={v['every']}", f"train.eval_batch_size={v['eval_batch']}",
                           "logger.progress=false", "overwrite=true", f"output_dir={run_dir}"])


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    runs = variants(p)
    with tempfile.TemporaryDirectory(prefix="dbsl-bench-") as tmp:
        configs = [config(p, v, Path(tmp) / f"run{i}") for i, v in enumerate(runs)]
        timed = interleave({i: (lambda cfg=cfg: execute(cfg)) for i, cfg in enumerate(configs)},
                           p["repeats"], p["warmup"])
    rows = []
    for i, v in enumerate(runs):
        summaries = timed[i].values
        commits = summaries[0]["total_commits"]
        tests = sum(1 for c in range(commits) if (c + 1) % v["every"] == 0 or c == commits - 1)
        wall = statistics.median(s["wall_time"] for s in summaries)
        evaluation = statistics.median(s["eval_time"] for s in summaries)
        rows.append({"variant": v["variant"], "train": v["train"], "test": v["test"], "batch": v["batch"],
                     "eval_every": v["every"], "evaluations": tests, "wall_s": wall, "eval_s": evaluation,
                     "eval_share": statistics.median(s["eval_time"] / s["wall_time"] for s in summaries),
                     "per_test_s": evaluation / tests})
    every_commit, every_m = rows[:2]
    shares = [s["eval_time"] / s["wall_time"] for s in timed[len(runs) - 1].values]
    data = "synthetic" if "dataset=synthetic" in dataset_overrides(p["data"]) else "Fashion-MNIST"
    notes = [f"{p['epochs']} epochs at {p['resolution']} px, baseline scheme, dbsl's defaults (channels_last, "
             f"evaluation under inference_mode); data: {data}; medians over {p['repeats']} interleaved runs; run wall "
             "= the summary's wall_time (wall seconds, so other processes' load weighs on both parts alike)"]
    headline = {"label": f"eval share, m=1 vs m={p['every']} (full data set's proportion)",
                "value": every_commit["eval_share"], "compare": every_m["eval_share"], "target": None,
                "range": [min(shares), max(shares)] if len(runs) == 3 else None}
    if len(runs) == 3:
        study_row = rows[2]
        headline = {"label": f"eval share of a study run (m={study_row['eval_every']}; full set's proportion: m=1 "
                             f"{every_commit['eval_share']:.3f}, m={p['every']} {every_m['eval_share']:.3f})",
                    "value": study_row["eval_share"], "target": None, "range": [min(shares), max(shares)],
                    "rounds": len(shares), "clock": "wall"}
        notes.append(f"study: {runs[2]['source']}; training and test sets both divided by {p['study_scale']}, so a "
                     "test costs, relative to an epoch, what it costs in the study")
    return result(NAME, TITLE, "reported (the share of a run spent testing)", COLUMNS, rows, headline=headline,
                  notes=notes)
