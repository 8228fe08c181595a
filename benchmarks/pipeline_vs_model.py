"""Benchmark 2: images/s the input pipeline delivers against the images/s the model trains.

Per resolution, three interleaved sides on Fashion-MNIST (a synthetic stand-in of its shape when the Debian files
are missing), ResNet-18 width 16, the paper's augmentation (flip + rotation + zoom, one ``grid_sample``):

- ``pipeline``: :meth:`dbsl.data.Pipeline.train_batches` alone (gather, augment + resize, normalise);
- ``model``: :meth:`dbsl.local_training.LocalTrainer.train` on batches already in memory;
- ``fed``: the trainer fed by the pipeline, as a worker's mini-epoch runs (the pipeline runs inline, not ahead).

Target: pipeline / model >= 3 at the lowest resolution. ``pipeline share`` = 1 - fed / model is the part of a
training step the inline pipeline takes.
"""
from __future__ import annotations

import torch

from dbsl.data import Pipeline

from .common import CPU, TIMING_LR, image_source, new_model, new_trainer, pick, random_batches, result
from .timing import Comparison, compare, interleave, one_thread_clock

NAME = "pipeline_vs_model"
TITLE = "Data pipeline (augment=paper) vs model training (images/s)"
TARGET = 3.0
SIZES = {
    "full": {"resolutions": [12, 16, 20, 28, 32], "batch": 256, "steps": 2, "pipeline_steps": 8, "width": 16,
             "repeats": 7, "warmup": 1, "data": "auto"},
    "quick": {"resolutions": [12, 28], "batch": 128, "steps": 1, "pipeline_steps": 4, "width": 16,
              "repeats": 3, "warmup": 1, "data": "auto"},
    "tiny": {"resolutions": [8], "batch": 8, "steps": 1, "pipeline_steps": 2, "width": 2, "repeats": 1,
             "warmup": 0, "data": "synthetic"},
}
COLUMNS = [("resolution", "px"), ("batch", "batch"), ("pipeline_ips", "pipeline img/s"),
           ("model_ips", "model img/s"), ("ratio", "pipeline / model"), ("interval", "95 % interval"),
           ("fed_ips", "trainer fed by pipeline img/s"),
           ("pipeline_share", "pipeline share of a step")]


def measure(pipeline: Pipeline, trainer, resolution: int, batch: int, steps: int, pipeline_steps: int,
            repeats: int, warmup: int) -> dict:
    source = pipeline.source
    order = torch.randperm(len(source.train), generator=torch.Generator().manual_seed(resolution))
    count = max(steps, pipeline_steps) * batch
    indices = order.repeat(count // len(order) + 1)[:count]
    in_memory = random_batches(steps, batch, resolution, source.channels, source.num_classes)

    def batches(n: int):
        return pipeline.train_batches(indices[: n * batch], batch, resolution, torch.Generator().manual_seed(0))

    def pipeline_only() -> None:
        for _ in batches(pipeline_steps):
            pass

    samples = interleave({
        "pipeline": pipeline_only,
        "model": lambda: trainer.train(in_memory, TIMING_LR),
        "fed": lambda: trainer.train(batches(steps), TIMING_LR),
    }, repeats, warmup)
    clock = one_thread_clock()
    pipe_ips = samples["pipeline"].rate(pipeline_steps * batch, clock)
    model_ips = samples["model"].rate(steps * batch, clock)
    fed_ips = samples["fed"].rate(steps * batch, clock)
    # per round: pipeline img/s / model img/s = (pipeline_steps / steps) * model seconds / pipeline seconds
    per_round = Comparison([pipeline_steps / steps * r for r in compare(samples["model"], samples["pipeline"],
                                                                        clock).ratios], clock)
    return {"resolution": resolution, "batch": batch, "pipeline_ips": pipe_ips, "model_ips": model_ips,
            "ratio": per_round.median, "interval": list(per_round.interval) if per_round.interval else None,
            "fed_ips": fed_ips, "pipeline_share": 1 - fed_ips / model_ips, "_per_round": per_round}


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    source = image_source(p["data"])
    pipeline = Pipeline(source, "paper", CPU)
    trainer = new_trainer(new_model(p["width"], source.num_classes, source.channels))
    rows = [measure(pipeline, trainer, r, p["batch"], p["steps"], p["pipeline_steps"], p["repeats"], p["warmup"])
            for r in p["resolutions"]]
    lowest = min(rows, key=lambda r: r["resolution"])
    per_round = lowest["_per_round"]
    for row in rows:
        del row["_per_round"]
    return result(NAME, TITLE, f"pipeline / model >= {TARGET:g} at the lowest resolution", COLUMNS, rows,
                  headline=per_round.headline(f"pipeline / model at {lowest['resolution']} px", TARGET),
                  notes=[f"data: {source.name} ({len(source.train)} training images, {source.native_resolution} px), "
                         f"ResNet-18 width {p['width']}, trainer with the paper's weight decay (and dbsl's default "
                         f"channels_last); {per_round.clock} clock; medians of per-round ratios over {p['repeats']} "
                         "interleaved rounds"],
                  dataset=source.name)
