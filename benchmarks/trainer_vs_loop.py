"""Benchmark 1: dbsl's local training step against a bare PyTorch loop.

Three sides per (width, resolution, batch), all on the same in-memory batches, same model (equal initial weights,
dropout 0.2), same SGD (momentum 0.9, equal LR) and threads:

- ``bare``: forward, cross-entropy, backward, ``SGD.step`` written out here;
- ``trainer``: :meth:`dbsl.train.LocalTrainer.train` with every weight decay off (the fair comparison);
- ``trainer_decay``: the same with the paper's double decay (L2 kernel regulariser + decoupled decay, 1e-4 each).

Target: trainer / bare >= 0.97 in images/s. The cost of the double decay is reported beside it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .common import NO_DECAY, TIMING_LR, new_model, new_trainer, pick, random_batches, result
from .timing import interleave, round_ratios, spread

NAME = "trainer_vs_loop"
TITLE = "Trainer vs a bare PyTorch loop (images/s, data in memory)"
TARGET = 0.97
# cases: (width, resolution, batch, batches per timed call); width 64 only at 16 px and small batches (budget)
SIZES = {
    "full": {"cases": [(16, 16, 256, 2), (16, 20, 256, 2), (16, 28, 256, 1), (16, 32, 256, 1),
                       (64, 16, 32, 4), (64, 16, 64, 2)], "repeats": 7, "warmup": 1},
    "quick": {"cases": [(16, 16, 128, 1), (16, 32, 128, 1), (64, 16, 32, 1)], "repeats": 3, "warmup": 1},
    "tiny": {"cases": [(2, 8, 8, 1)], "repeats": 1, "warmup": 0},
}
COLUMNS = [("width", "width"), ("resolution", "px"), ("batch", "batch"), ("bare_ips", "bare img/s"),
           ("trainer_ips", "trainer img/s"), ("ratio", "trainer / bare"), ("ratio_rounds", "per-round range"),
           ("decay_ips", "trainer + paper decay img/s"), ("decay_ratio", "decay / no decay")]


def bare_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches) -> None:
    """The reference: the least a training step can do."""
    model.train()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def measure(width: int, resolution: int, batch: int, steps: int, repeats: int, warmup: int) -> dict:
    batches = random_batches(steps, batch, resolution)
    bare_model = new_model(width)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=TIMING_LR, momentum=0.9)
    trainer = new_trainer(new_model(width), **NO_DECAY)
    decay = new_trainer(new_model(width))  # OptimConfig's defaults: the paper's kernel_l2 and decoupled decay
    samples = interleave({
        "bare": lambda: bare_loop(bare_model, bare_opt, batches),
        "trainer": lambda: trainer.train(batches, TIMING_LR),
        "trainer_decay": lambda: decay.train(batches, TIMING_LR),
    }, repeats, warmup)
    images = steps * batch
    bare, plain, decayed = samples["bare"], samples["trainer"], samples["trainer_decay"]
    return {"width": width, "resolution": resolution, "batch": batch, "bare_ips": bare.rate(images),
            "trainer_ips": plain.rate(images), "ratio": plain.rate(images) / bare.rate(images),
            "ratio_rounds": spread([1 / r for r in round_ratios(plain, bare)]),
            "decay_ips": decayed.rate(images), "decay_ratio": decayed.rate(images) / plain.rate(images)}


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    rows = [measure(*case, p["repeats"], p["warmup"]) for case in p["cases"]]
    worst = min(rows, key=lambda r: r["ratio"])
    decay = geometric_mean([r["decay_ratio"] for r in rows])
    return result(NAME, TITLE, f"trainer / bare >= {TARGET}", COLUMNS, rows,
                  headline={"label": f"trainer / bare, geometric mean of {len(rows)} cases",
                            "value": geometric_mean([r["ratio"] for r in rows]), "target": TARGET,
                            "where": f"worst {worst['ratio']:.3f} at width {worst['width']}, {worst['resolution']} px"},
                  notes=[f"medians over {p['repeats']} interleaved rounds; the per-round range shows the noise, "
                         "against which the worst of several cases is biased low",
                         f"the paper's double weight decay (L2 kernel regulariser + decoupled decay) changes the "
                         f"trainer's speed by {100 * (decay - 1):+.1f} % (geometric mean over the cases)"])
