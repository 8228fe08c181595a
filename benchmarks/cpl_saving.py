"""Benchmark 4: what cyclic progressive learning saves: an epoch at each CPL resolution against full resolution.

One side per resolution, all interleaved (round-robin, order alternating): a worker's training step (the
:class:`~dbsl.data.Pipeline` with the paper's augmentation feeding :class:`~dbsl.local_training.LocalTrainer` with the
paper's weight decay) on Fashion-MNIST (or its synthetic stand-in), ResNet-18 width 16, one batch size for all
resolutions, so that the ratio isolates the resolution. The epoch time is the measured time per image times the
training-set size. The pixel ratio (r / R)^2 is the FLOP limit of the saving for a convolutional network.

Below the table: the epoch-time saving of the CPU CPL presets' schedules, from these ratios.
"""
from __future__ import annotations

import torch

from dbsl.compose import compose_config
from dbsl.data import Pipeline
from dbsl.plan import build_plan

from .common import CPU, TIMING_LR, image_source, new_model, new_trainer, pick, result
from .timing import interleave

NAME = "cpl_saving"
TITLE = "CPL saving: epoch time at each resolution vs full resolution"
PRESETS = ("cpu_fashion_mnist", "cpu_three_res_fashion_mnist")
SIZES = {
    "full": {"resolutions": [12, 16, 20, 24, 28], "batch": 256, "steps": 3, "width": 16, "repeats": 5,
             "warmup": 1, "data": "auto"},
    "quick": {"resolutions": [12, 20, 28], "batch": 128, "steps": 2, "width": 16, "repeats": 3, "warmup": 1,
              "data": "auto"},
    "tiny": {"resolutions": [4, 8], "batch": 8, "steps": 1, "width": 2, "repeats": 1, "warmup": 0,
             "data": "synthetic"},
}
COLUMNS = [("resolution", "px"), ("epoch_s", "epoch s"), ("time_ratio", "time / full"),
           ("pixel_ratio", "pixels / full"), ("saving_realised", "saving realised (of the pixel limit)")]


def preset_savings(ratios: dict) -> list[str]:
    """Epoch-time saving of each CPU CPL preset's schedule (commits per resolution weighted by the measured ratio)."""
    lines = []
    for name in PRESETS:
        cfg = compose_config([f"experiment={name}", "scheme=cpl"])
        plan = build_plan(cfg, 60000)
        full = max(cfg.schedule.resolutions)
        if not all(p.resolution in ratios for p in plan.phases) or full not in ratios:
            continue
        commits = sum(p.end - p.start for p in plan.phases)
        time = sum((p.end - p.start) * ratios[p.resolution] / ratios[full] for p in plan.phases) / commits
        pixels = sum((p.end - p.start) * (p.resolution / full) ** 2 for p in plan.phases) / commits
        lines.append(f"{name} ({'/'.join(map(str, cfg.schedule.resolutions))} px): CPL epochs cost "
                     f"{time:.3f} of full-resolution epochs on average (pixel limit {pixels:.3f})")
    return lines


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    source = image_source(p["data"])
    pipeline = Pipeline(source, "paper", CPU)
    trainer = new_trainer(new_model(p["width"], source.num_classes, source.channels))
    batch, steps = p["batch"], p["steps"]
    order = torch.randperm(len(source.train), generator=torch.Generator().manual_seed(0))
    indices = order.repeat(steps * batch // len(order) + 1)[: steps * batch]

    def epoch_part(resolution: int):
        return lambda: trainer.train(
            pipeline.train_batches(indices, batch, resolution, torch.Generator().manual_seed(resolution)), TIMING_LR)

    resolutions = sorted(p["resolutions"])
    full = resolutions[-1]
    timed = interleave({r: epoch_part(r) for r in resolutions}, p["repeats"], p["warmup"])
    per_image = {r: timed[r].median / (steps * batch) for r in resolutions}
    rows = []
    for r in resolutions:
        time_ratio, pixel_ratio = per_image[r] / per_image[full], (r / full) ** 2
        realised = (1 - time_ratio) / (1 - pixel_ratio) if r != full else None
        rows.append({"resolution": r, "epoch_s": per_image[r] * len(source.train), "time_ratio": time_ratio,
                     "pixel_ratio": pixel_ratio, "saving_realised": realised})
    lowest = rows[0]
    notes = [f"data: {source.name}, {len(source.train)} training images per epoch, batch {batch}, ResNet-18 width "
             f"{p['width']}, augment=paper; medians over {p['repeats']} interleaved rounds"]
    notes += preset_savings({r: per_image[r] for r in resolutions})
    return result(NAME, TITLE, "reported beside the pixel-count (FLOP) limit", COLUMNS, rows,
                  headline={"label": f"time / full at {lowest['resolution']} px (pixel limit "
                                     f"{lowest['pixel_ratio']:.3f})", "value": lowest["time_ratio"], "target": None},
                  notes=notes, dataset=source.name)
