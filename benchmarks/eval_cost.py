"""Benchmark 5: the share of a run's time spent evaluating, after every commit versus every m commits.

Two interleaved sides, each a whole simulated run through :func:`dbsl.runner.execute` (baseline scheme, n = 4,
the CPU presets' 28 px, ResNet-18 width 16) on a Fashion-MNIST subset that keeps the full set's 6 : 1
train : test proportion (so a test costs, relative to a mini-epoch, what it costs in a full-size run):
``train.eval_every=1`` (the authors' setting) and ``train.eval_every=m``. The share is the summary's
``eval_time / wall_time``.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from dbsl.compose import compose_config
from dbsl.runner import execute

from .common import dataset_overrides, pick, result
from .timing import interleave

NAME = "eval_cost"
TITLE = "Evaluation cost: share of run time spent testing"
SIZES = {
    "full": {"train": 3600, "test": 600, "epochs": 2, "every": 4, "width": 16, "resolution": 28, "batch": 256,
             "repeats": 3, "warmup": 0, "data": "auto"},
    "quick": {"train": 1200, "test": 200, "epochs": 1, "every": 4, "width": 16, "resolution": 28, "batch": 256,
              "repeats": 2, "warmup": 0, "data": "auto"},
    "tiny": {"train": 96, "test": 16, "epochs": 1, "every": 2, "width": 2, "resolution": 8, "batch": 8,
             "repeats": 1, "warmup": 0, "data": "synthetic"},
}
COLUMNS = [("eval_every", "eval_every (m)"), ("evaluations", "tests"), ("wall_s", "run wall s"),
           ("eval_s", "eval s"), ("eval_share", "eval share of wall"), ("per_test_s", "s per test")]


def config(p: dict, every: int, run_dir: Path):
    r = p["resolution"]
    data = dataset_overrides(p["data"]) + [f"dataset.num_train={p['train']}", f"dataset.num_test={p['test']}"]
    if "dataset=synthetic" in data:
        data += [f"dataset.synthetic_train={p['train']}", f"dataset.synthetic_test={p['test']}"]
    return compose_config(["scheme=baseline", *data, f"model.width={p['width']}", "ps.num_workers=4",
                           f"schedule.epochs={p['epochs']}", "optim.lr_milestones=[]", f"schedule.resolutions=[{r}]",
                           "schedule.dropouts=[0.2]", f"schedule.batch_large=[{p['batch']}]", "schedule.cycle_ends=[]",
                           f"train.eval_every={every}", "train.eval_batch_size=1000", "logger.progress=false",
                           "overwrite=true", f"output_dir={run_dir}"])


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    with tempfile.TemporaryDirectory(prefix="dbsl-bench-") as tmp:
        configs = {every: config(p, every, Path(tmp) / f"every{every}") for every in (1, p["every"])}
        timed = interleave({every: (lambda cfg=cfg: execute(cfg)) for every, cfg in configs.items()},
                           p["repeats"], p["warmup"])
    rows = []
    for every, samples in timed.items():
        summaries = samples.values
        commits = summaries[0]["total_commits"]
        tests = sum(1 for c in range(commits) if (c + 1) % every == 0 or c == commits - 1)
        wall = statistics.median(s["wall_time"] for s in summaries)
        evaluation = statistics.median(s["eval_time"] for s in summaries)
        rows.append({"eval_every": every, "evaluations": tests, "wall_s": wall, "eval_s": evaluation,
                     "eval_share": statistics.median(s["eval_time"] / s["wall_time"] for s in summaries),
                     "per_test_s": evaluation / tests})
    every_commit, every_m = rows
    return result(NAME, TITLE, "reported (the share that evaluating after every commit adds)", COLUMNS, rows,
                  headline={"label": f"eval share, m=1 vs m={p['every']}",
                            "value": every_commit["eval_share"], "compare": every_m["eval_share"], "target": None},
                  notes=[f"{p['train']} training / {p['test']} test images, {commits} commits (d/n = {p['train'] // 4} "
                         f"samples at batch {p['batch']}), {p['resolution']} px; medians over {p['repeats']} "
                         "interleaved runs; run wall = the summary's wall_time"])
