"""Benchmark: dbsl's CPU fast path against the bare eager fp32 NCHW PyTorch loop, side by side in one run.

Training, per case (width, resolution, batch) from the CPU presets' shapes (ResNet-18 width 16 and 64, 16-32 px,
large batches B_L and small ones B_S), all cases in every interleaved round, on the same in-memory batches, with
equal initial weights, dropout 0.2, SGD with momentum 0.9 and no weight decay on any side:

- ``bare``: the eager fp32 NCHW loop (:func:`benchmarks.trainer_vs_loop.bare_loop`), one torch thread: what a
  user writing plain PyTorch gets;
- ``dbsl``: :meth:`dbsl.local_training.LocalTrainer.train` with dbsl's defaults (``train.channels_last=true``), one
  thread;
- ``bf16``: the bare loop under ``torch.autocast("cpu", torch.bfloat16)``, channels-last, one thread; only where
  the CPU has bf16 instructions (avx512_bf16 or amx_bf16; elsewhere bf16 is emulated and slow). Reported, never a
  default: it changes the numerics;
- ``dbsl_2threads`` (the headline case only): ``dbsl`` with two torch threads, compared on the wall clock (its CPU
  seconds add both threads').

Evaluation, one interleaved table: the test-set pass at batch 1000 (the presets' ``train.eval_batch_size``) as a
plain loop does it (``torch.no_grad``, NCHW), the same channels-last, and dbsl's :func:`dbsl.local_training.evaluate`
(``torch.inference_mode``, channels-last) at batch 1000, 500, 250 and 128.

Every ratio is a median of per-round ratios with a 95 % interval of that median (timing.median_interval), on CPU
seconds (``time.process_time``) for the one-thread sides, which other processes sharing the cores inflate far less
than wall seconds. Headline: dbsl / bare in images/s at width 16, 28 px, batch 256, one thread; target >= 1.2
(issue 14). Rounds are added until the headline's interval lies on one side of the target. torch.compile: benchmark
compile_cost.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from dbsl.local_training import channels_last_for, evaluate

from .common import CPU, NO_DECAY, TIMING_LR, new_model, new_trainer, pick, random_batches, result
from .timing import Comparison, compare, decided, interleave, median_interval
from .trainer_vs_loop import bare_loop

NAME = "fast_path"
TITLE = "dbsl's CPU fast path vs the bare eager fp32 NCHW loop (images/s, one thread, data in memory)"
TARGET = 1.2
# training cases: (width, resolution, batch, batches per timed call); the first is the headline
SIZES = {
    "full": {"cases": [(16, 28, 256, 1), (16, 32, 128, 2), (16, 28, 64, 4), (16, 28, 29, 8), (16, 20, 96, 3),
                       (16, 20, 43, 6), (16, 16, 128, 2), (64, 16, 64, 2), (64, 16, 29, 4)],
             "repeats": 21, "min_repeats": 9, "warmup": 1, "eval": (16, 28, 2000), "eval_repeats": 9},
    "quick": {"cases": [(16, 28, 256, 1), (16, 20, 43, 2), (64, 16, 29, 1)], "repeats": 6, "min_repeats": 6,
              "warmup": 1, "eval": (16, 28, 1000), "eval_repeats": 6},
    "tiny": {"cases": [(2, 8, 8, 1)], "repeats": 1, "warmup": 0, "eval": (2, 8, 16), "eval_repeats": 1},
}
EVAL_BATCHES = (1000, 500, 250, 128)  # the first: the presets' train.eval_batch_size
COLUMNS = [("width", "width"), ("resolution", "px"), ("batch", "batch"), ("bare_ips", "bare img/s"),
           ("dbsl_ips", "dbsl img/s"), ("ratio", "dbsl / bare"), ("interval", "95 % interval"),
           ("wall_ratio", "dbsl / bare (wall)"), ("bf16_ratio", "bf16 autocast / bare"),
           ("bf16_interval", "bf16 95 % interval"), ("threads2_ratio", "dbsl 2 threads / 1 thread (wall)"),
           ("threads2_interval", "2 threads 95 % interval")]
EVAL_COLUMNS = [("side", "evaluation"), ("batch", "batch"), ("ips", "img/s"), ("ratio", "speed vs no_grad NCHW"),
                ("interval", "95 % interval")]


def has_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (Linux /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Threads:
    """Run a call with ``n`` torch threads, then restore the count (the other sides run one)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def training_sides(case: tuple, bf16: bool, threads2: bool) -> dict:
    width, resolution, batch, steps = case
    batches = random_batches(steps, batch, resolution)
    bare_model = new_model(width)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=TIMING_LR, momentum=0.9)
    trainer = new_trainer(new_model(width), **NO_DECAY)  # dbsl's defaults: channels_last
    sides = {(case, "bare"): lambda: bare_loop(bare_model, bare_opt, batches),
             (case, "dbsl"): lambda: trainer.train(batches, TIMING_LR)}
    if bf16:
        model = new_model(width)
        layout = torch.channels_last if channels_last_for(model, True, CPU) else torch.contiguous_format
        model.to(memory_format=layout)
        opt = torch.optim.SGD(model.parameters(), lr=TIMING_LR, momentum=0.9)
        cl_batches = [(x.contiguous(memory_format=layout), y) for x, y in batches]

        def bf16_loop():
            model.train()
            for x, y in cl_batches:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        sides[(case, "bf16")] = bf16_loop
    if threads2:
        wide = new_trainer(new_model(width), **NO_DECAY)

        def two_threads():
            with Threads(2):
                return wide.train(batches, TIMING_LR)

        sides[(case, "dbsl_2threads")] = two_threads
    return sides


def speed(timed: dict, case: tuple, arm: str, reference: str = "bare", clock: str = "cpu") -> Comparison:
    """Per-round speed of ``arm`` relative to ``reference`` (reference seconds / arm seconds)."""
    return compare(timed[(case, arm)], timed[(case, reference)], clock, invert=True)


def interval(c: Comparison | None) -> list | None:
    return list(c.interval) if c is not None and c.interval else None


def training(p: dict) -> tuple[list[dict], Comparison, dict]:
    cases = [tuple(c) for c in p["cases"]]
    headline, bf16 = cases[0], has_bf16()
    sides = {}
    for case in cases:
        sides.update(training_sides(case, bf16, threads2=case == headline))
    timed = interleave(sides, p["repeats"], p["warmup"], min_repeats=p.get("min_repeats"),
                       enough=lambda out: decided(median_interval(speed(out, headline, "dbsl").ratios), TARGET))
    rows = []
    for case in cases:
        width, resolution, batch, steps = case
        images = steps * batch
        dbsl, wall = speed(timed, case, "dbsl"), speed(timed, case, "dbsl", clock="wall")
        half = speed(timed, case, "bf16") if bf16 else None
        two = speed(timed, case, "dbsl_2threads", "dbsl", clock="wall") if case == headline else None
        rows.append({"width": width, "resolution": resolution, "batch": batch,
                     "bare_ips": timed[(case, "bare")].rate(images, "cpu"),
                     "dbsl_ips": timed[(case, "dbsl")].rate(images, "cpu"), "ratio": dbsl.median,
                     "interval": interval(dbsl), "wall_ratio": wall.median,
                     "bf16_ratio": half.median if half else None, "bf16_interval": interval(half),
                     "threads2_ratio": two.median if two else None, "threads2_interval": interval(two)})
    return rows, speed(timed, headline, "dbsl"), {"bf16": bf16, "rounds": len(timed[(headline, "bare")].cpu)}


def evaluation(p: dict) -> list[dict]:
    width, resolution, images = p["eval"]
    sizes = sorted({max(1, min(b, images)) for b in EVAL_BATCHES}, reverse=True)
    big = sizes[0]
    data = random_batches(1, images, resolution)
    batched = {b: [(x[i:i + b], y[i:i + b]) for x, y in data for i in range(0, images, b)] for b in sizes}
    plain_model = new_model(width).eval()
    model = new_model(width)
    cl = channels_last_for(model, True, CPU)
    if cl:
        model.to(memory_format=torch.channels_last)

    def plain(net, layout):
        def call():
            net.eval()
            with torch.no_grad():
                for x, y in batched[big]:
                    logits = net(x.contiguous(memory_format=layout))
                    F.cross_entropy(logits, y, reduction="sum").item()
                    (logits.argmax(1) == y).sum().item()
        return call

    sides = {("no_grad NCHW (plain loop)", big): plain(plain_model, torch.contiguous_format),
             ("no_grad channels_last", big): plain(model, torch.channels_last if cl else torch.contiguous_format)}
    for b in sizes:
        sides[("dbsl evaluate (inference_mode, channels_last)", b)] = \
            lambda b=b: evaluate(model, batched[b], CPU, channels_last=cl)
    timed = interleave(sides, p["eval_repeats"], p["warmup"])
    reference = ("no_grad NCHW (plain loop)", big)
    rows = []
    for (side, batch), samples in timed.items():
        c = compare(samples, timed[reference], "cpu", invert=True)
        rows.append({"side": side, "batch": batch, "ips": samples.rate(images, "cpu"), "ratio": c.median,
                     "interval": None if (side, batch) == reference else interval(c)})
    return rows


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    with Threads(1):
        rows, head, info = training(p)
        eval_rows = evaluation(p)
    width, resolution, batch, _ = p["cases"][0]
    notes = [f"CPU seconds (time.process_time; one torch thread) unless marked wall; medians of per-round ratios over "
             f"{info['rounds']} interleaved rounds (rounds stop once the headline's 95 % interval excludes {TARGET}, "
             f"from {p.get('min_repeats', p['repeats'])} rounds on, at most {p['repeats']}); an interval is blank "
             "with fewer than 6 rounds",
             "dbsl = LocalTrainer with its defaults (channels_last) and no weight decay, as the bare loop; what the "
             "trainer's bookkeeping costs at equal layout is benchmark trainer_vs_loop",
             "bf16 autocast: " + ("measured (the CPU has bf16 instructions); it changes the floats, so it is not a "
                                  "dbsl default" if info["bf16"] else "not measured: this CPU has no bf16 "
                                  "instructions (avx512_bf16 / amx_bf16)"),
             "2 threads: the same dbsl trainer with torch.set_num_threads(2), wall clock against the 1-thread dbsl "
             "side of the same round; on cores shared with other processes it can be slower than one thread",
             f"evaluation: {p['eval'][2]} test images at {p['eval'][1]} px, width {p['eval'][0]}, "
             f"{p['eval_repeats']} interleaved rounds, CPU seconds, speed relative to the plain no_grad NCHW loop"]
    return result(NAME, TITLE, f"dbsl / bare >= {TARGET} at width {width}, {resolution} px, batch {batch}, one "
                  "thread", COLUMNS, rows,
                  headline=head.headline(f"dbsl / bare at width {width}, {resolution} px, batch {batch}, 1 thread",
                                         TARGET),
                  notes=notes, tables=[{"title": "Evaluation (one thread)", "columns": EVAL_COLUMNS,
                                        "rows": eval_rows}])
