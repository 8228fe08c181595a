"""Benchmark 1: dbsl's local training step against a bare PyTorch loop doing the same computation.

Three sides per (width, resolution, batch), all on the same in-memory batches, same model (equal initial weights,
dropout 0.2), same SGD (momentum 0.9, equal LR), same threads and the same memory layout (NCHW), so the ratio is
the cost of what the trainer adds (bookkeeping of loss and accuracy, optimizer handling), not of a faster layout:

- ``bare``: forward, cross-entropy, backward, ``SGD.step`` written out here;
- ``trainer``: :meth:`dbsl.local_training.LocalTrainer.train` with every weight decay off and ``channels_last=False``;
- ``trainer_decay``: the same with the paper's double decay (L2 kernel regulariser + decoupled decay, 1e-4 each).

Every case runs in every round (one interleaved set of sides), so each round gives one geometric mean over the
cases of bare time / trainer time; the headline is the median of those with its 95 % interval, and rounds are added
(up to a maximum) until that interval lies on one side of the target. Target: trainer / bare >= 0.97 in images/s.
What dbsl's defaults (channels_last) gain over this bare loop is benchmark ``fast_path``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .common import NO_DECAY, TIMING_LR, new_model, new_trainer, pick, random_batches, result
from .timing import Comparison, compare, decided, geometric_mean, interleave, median_interval, one_thread_clock

NAME = "trainer_vs_loop"
TITLE = "Trainer vs a bare PyTorch loop, same layout (images/s, data in memory)"
TARGET = 0.97
# cases: (width, resolution, batch, batches per timed call); width 64 only at 16 px and small batches (budget)
SIZES = {
    "full": {"cases": [(16, 16, 256, 2), (16, 20, 256, 2), (16, 28, 256, 1), (16, 32, 256, 1),
                       (64, 16, 32, 4), (64, 16, 64, 2)], "repeats": 25, "min_repeats": 9, "warmup": 1},
    "quick": {"cases": [(16, 16, 128, 1), (16, 32, 128, 1), (64, 16, 32, 1)], "repeats": 6, "min_repeats": 6,
              "warmup": 1},
    "tiny": {"cases": [(2, 8, 8, 1)], "repeats": 1, "warmup": 0},
}
COLUMNS = [("width", "width"), ("resolution", "px"), ("batch", "batch"), ("bare_ips", "bare img/s"),
           ("trainer_ips", "trainer img/s"), ("ratio", "trainer / bare"), ("interval", "95 % interval"),
           ("decay_ips", "trainer + paper decay img/s"), ("decay_ratio", "decay / no decay")]


def bare_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches) -> None:
    """The reference: the least a training step can do."""
    model.train()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def sides(case: tuple) -> dict:
    width, resolution, batch, steps = case
    batches = random_batches(steps, batch, resolution)
    bare_model = new_model(width)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=TIMING_LR, momentum=0.9)
    trainer = new_trainer(new_model(width), channels_last=False, **NO_DECAY)
    decay = new_trainer(new_model(width), channels_last=False)  # OptimConfig's defaults: the paper's double decay
    return {(case, "bare"): lambda: bare_loop(bare_model, bare_opt, batches),
            (case, "trainer"): lambda: trainer.train(batches, TIMING_LR),
            (case, "trainer_decay"): lambda: decay.train(batches, TIMING_LR)}


def per_round(timed: dict, cases: list, clock: str) -> Comparison:
    """Each round's geometric mean over the cases of bare time / trainer time (the trainer's relative speed)."""
    by_case = [compare(timed[(c, "trainer")], timed[(c, "bare")], clock, invert=True).ratios for c in cases]
    return Comparison([geometric_mean(values) for values in zip(*by_case)], clock)


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    cases = [tuple(c) for c in p["cases"]]
    clock = one_thread_clock()
    timed_sides = {key: call for case in cases for key, call in sides(case).items()}
    timed = interleave(timed_sides, p["repeats"], p["warmup"], min_repeats=p.get("min_repeats"),
                       enough=lambda out: decided(median_interval(per_round(out, cases, clock).ratios), TARGET))
    rows = []
    for case in cases:
        width, resolution, batch, steps = case
        bare, plain, decayed = (timed[(case, arm)] for arm in ("bare", "trainer", "trainer_decay"))
        images = steps * batch
        speed = compare(plain, bare, clock, invert=True)
        rows.append({"width": width, "resolution": resolution, "batch": batch, "bare_ips": bare.rate(images, clock),
                     "trainer_ips": plain.rate(images, clock), "ratio": speed.median,
                     "interval": list(speed.interval) if speed.interval else None,
                     "decay_ips": decayed.rate(images, clock),
                     "decay_ratio": compare(decayed, plain, clock, invert=True).median})
    overall = per_round(timed, cases, clock)
    worst = min(rows, key=lambda r: r["ratio"])
    decay = geometric_mean([r["decay_ratio"] for r in rows])
    return result(NAME, TITLE, f"trainer / bare >= {TARGET}", COLUMNS, rows,
                  headline=overall.headline(f"trainer / bare, geometric mean of {len(rows)} cases", TARGET,
                                            where=f"worst {worst['ratio']:.3f} at width {worst['width']}, "
                                                  f"{worst['resolution']} px, batch {worst['batch']}"),
                  notes=[f"{overall.clock} clock; ratios are medians of per-round ratios over {len(overall.ratios)} "
                         f"interleaved rounds (rounds stop once the headline's 95 % interval excludes {TARGET}, "
                         f"from {p.get('min_repeats', p['repeats'])} rounds on, at most {p['repeats']}); both sides "
                         "NCHW (train.channels_last=false)",
                         f"the paper's double weight decay (L2 kernel regulariser + decoupled decay) changes the "
                         f"trainer's speed by {100 * (decay - 1):+.1f} % (geometric mean over the cases)"])
