"""Benchmark 3a: the parameter server's overhead in the simulated executor.

Two interleaved sides train the same number of samples at the same batch size, resolution and model:

- ``simulated``: :func:`dbsl.runner.execute` of a baseline run with n = 4 workers (pull, mini-epoch, push and
  merge, metrics rows), evaluation off except the final one, which is subtracted (``wall_time - eval_time`` from
  the run's summary.json);
- ``single``: one :class:`~dbsl.train.LocalTrainer` fed by one :class:`~dbsl.data.Pipeline` over all those samples.

Target: simulated / single <= 1.03 in time.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from dbsl.compose import compose_config
from dbsl.data import Pipeline, load_dataset
from dbsl.plan import build_plan
from dbsl.runner import execute
from dbsl.train import LocalTrainer

from .common import CPU, new_model, pick, result
from .timing import Samples, interleave, round_ratios, spread

NAME = "ps_overhead"
TITLE = "Parameter-server overhead: simulated n-worker run vs single-process training"
TARGET = 1.03
SIZES = {
    "full": {"width": 16, "resolution": 16, "batch": 256, "train": 4096, "epochs": 6, "workers": 4,
             "repeats": 3, "warmup": 1},
    "quick": {"width": 16, "resolution": 16, "batch": 128, "train": 1024, "epochs": 2, "workers": 4,
              "repeats": 2, "warmup": 1},
    "tiny": {"width": 2, "resolution": 8, "batch": 16, "train": 128, "epochs": 1, "workers": 2,
             "repeats": 1, "warmup": 0},
}
COLUMNS = [("workers", "n"), ("width", "width"), ("resolution", "px"), ("batch", "batch"),
           ("samples", "samples"), ("commits", "commits"), ("single_s", "single process s"),
           ("simulated_s", "simulated s"), ("ratio", "simulated / single"), ("ratio_rounds", "per-round range"),
           ("training_s", "of which training s"), ("outside_s", "outside training s"),
           ("training_ratio", "training / single")]


def overrides(p: dict, run_dir: Path) -> list[str]:
    r = p["resolution"]
    return ["scheme=baseline", "dataset=synthetic", f"dataset.resolution={r}", "dataset.channels=3",
            "dataset.num_classes=10", f"dataset.synthetic_train={p['train']}", "dataset.synthetic_test=64",
            f"model.width={p['width']}", f"ps.num_workers={p['workers']}", f"schedule.epochs={p['epochs']}",
            "optim.lr_milestones=[]", f"schedule.resolutions=[{r}]", "schedule.dropouts=[0.2]",
            f"schedule.batch_large=[{p['batch']}]", "schedule.cycle_ends=[]", "train.eval_every=1000000",
            "train.eval_batch_size=64", "logger.progress=false", "overwrite=true", f"output_dir={run_dir}"]


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    with tempfile.TemporaryDirectory(prefix="dbsl-bench-") as tmp:
        cfg = compose_config(overrides(p, Path(tmp) / "run"))
        source = load_dataset(cfg.dataset, cfg.seed)
        plan = build_plan(cfg, len(source.train))
        phase = plan.phases[0]
        samples = plan.total_commits * phase.steps_large * phase.batch_large
        pipeline = Pipeline(source, cfg.dataset.augment, CPU)
        trainer = LocalTrainer(new_model(p["width"], 10, 3, phase.dropout), cfg.optim, CPU)
        order = torch.randperm(len(source.train), generator=torch.Generator().manual_seed(0))
        indices = order.repeat(samples // len(order) + 1)[:samples]
        def single() -> None:
            trainer.train(pipeline.train_batches(indices, phase.batch_large, phase.resolution,
                                                 torch.Generator().manual_seed(1)), phase.lr)

        timed = interleave({"single": single, "simulated": lambda: execute(cfg)}, p["repeats"], p["warmup"])
    one, runs = timed["single"], timed["simulated"].values
    sim = Samples([s["wall_time"] - s["eval_time"] for s in runs])
    training = [s["compute_time"] for s in runs]  # the workers' LocalTrainer seconds inside each run
    row = {"workers": plan.num_workers, "width": p["width"], "resolution": phase.resolution,
           "batch": phase.batch_large, "samples": samples, "commits": plan.total_commits, "single_s": one.median,
           "simulated_s": sim.median, "ratio": sim.median / one.median,
           "ratio_rounds": spread(round_ratios(sim, one)), "training_s": statistics.median(training),
           "outside_s": statistics.median(s - t for s, t in zip(sim.seconds, training))}
    row["training_ratio"] = row["training_s"] / one.median
    return result(NAME, TITLE, f"simulated / single <= {TARGET}", COLUMNS, [row],
                  headline={"label": "simulated / single (time)", "value": row["ratio"], "target": TARGET,
                            "higher_is_better": False},
                  notes=["simulated time = the summary's wall_time - eval_time (the one final evaluation is excluded); "
                         "'training' = its compute_time (the workers' LocalTrainer seconds); 'outside training' = "
                         "the rest: building the server's and the workers' models, pulls, merges, metrics rows",
                         f"medians over {p['repeats']} interleaved rounds"])
