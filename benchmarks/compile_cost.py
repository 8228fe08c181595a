"""Benchmark: does torch.compile pay for itself in a run of the study's length on this CPU?

Each setting runs in a subprocess of its own (fresh dynamo state; inductor's on-disk cache in a fresh directory, so
the first compile is cold; ``TORCHINDUCTOR_COMPILE_THREADS=1`` and one torch thread, as a one-thread study run has):

- ``static``: ``torch.compile(model, dynamic=False)``: one compile per input shape (and per dropout rate, a guarded
  module attribute);
- ``batch``: ``torch.compile(model)`` with the batch dimension marked dynamic (``torch._dynamo.mark_dynamic``) on
  every input, so B_L / B_S changes reuse one graph; a resolution change still recompiles (once, after which the
  spatial dimensions are dynamic too);
- ``static_warm``: ``static`` again on the cache ``static`` left, i.e. what every later run of a sweep pays.

In each, dbsl's :class:`~dbsl.local_training.LocalTrainer` (channels_last) trains the compiled model through the *walk*:
the input shapes (resolution, batch, dropout) of the study's hybrid run, in the order its phases first use them (the
most shapes of the four schemes). At each new shape the first call's CPU seconds (this process and its compiler
subprocesses) minus a second call's is that shape's compile time; the recompiles are dynamo's compiled frames after the
first. Then (cold settings) interleaved rounds at each walk shape and at width 16, 28 px, batch 256 time three sides:
the bare eager fp32 NCHW loop, the eager dbsl trainer and the compiled one (CPU seconds, medians of per-round ratios
with 95 % intervals).

Break-even: a scheme's run compiles its shapes once (the simulated executor's workers share the compiled code: a
second worker's model reuses it, checked in the walk) and saves, per mini-epoch at a shape, its steps x (eager -
compiled) seconds per batch. The break-even run length is compile seconds / mean saving per mini-epoch, against the
run's mini-epochs (epochs x n, all in one process). Headline: the study's baseline run (one shape, the best case).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, STUDY, pick, result, study

NAME = "compile_cost"
TITLE = "torch.compile on the CPU: compile time, recompiles and break-even in a study run (one thread)"
SCHEMES = ("baseline", "dbsl", "cpl", "hybrid")
HEADLINE_SHAPE = (28, 256)
NEVER = "never"  # a break-even where compiled steps save nothing
SIZES = {
    "full": {"settings": ["static", "batch", "static_warm"], "backend": "inductor", "rounds": 9, "images": 256,
             "extra_steady": [HEADLINE_SHAPE]},
    "quick": {"settings": ["static", "batch"], "backend": "inductor", "rounds": 6, "images": 128,
              "walk": [[16, 64, 0.2], [16, 29, 0.2]], "width": 16, "extra_steady": []},
    # tiny: dynamo with the eager backend (no code generation): the walk, recompile counting and break-even
    # arithmetic in seconds
    "tiny": {"settings": ["static", "batch"], "backend": "eager", "rounds": 1, "images": 8,
             "walk": [[8, 8, 0.1], [8, 4, 0.1], [6, 8, 0.2], [6, 4, 0.2]], "width": 2, "extra_steady": []},
}
COLUMNS = [("setting", "setting"), ("resolution", "px"), ("batch", "batch"), ("dropout", "dropout"),
           ("compile_s", "compile CPU s"), ("compile_wall_s", "compile wall s"), ("frames", "compiled frames"),
           ("speedup", "compiled / eager dbsl"), ("interval", "compiled / eager 95 % interval"),
           ("vs_bare", "compiled / bare"),
           ("vs_bare_interval", "compiled / bare 95 % interval"), ("eager_ms", "eager dbsl ms per batch"),
           ("saving_ms", "saving per batch ms")]
SCHEME_COLUMNS = [("scheme", "scheme"), ("shapes", "shapes"), ("mini_epochs", "mini-epochs"),
                  ("compile_s", "compile CPU s (cold)"), ("warm_s", "compile CPU s (warm cache)"),
                  ("saving_s", "saving over the run s"), ("break_even", "break-even mini-epochs (cold)"),
                  ("break_even_interval", "95 % interval"), ("break_even_warm", "break-even (warm)"),
                  ("pays", "pays (cold)")]


# -- the study ------------------------------------------------------------------------------------------------
def usage(plan) -> dict:
    """Expected mini-epochs per (resolution, batch, dropout) and their steps: a phase's commits split between small
    and large workers in proportion n_S : n - n_S (ASP decides exactly who commits when). With train.steps=ceil a
    partial last batch would add one more shape per entry (not counted here)."""
    out: dict = {}
    small_share = plan.num_small / plan.num_workers
    for phase in plan.phases:
        commits = phase.end - phase.start
        for batch, steps, share in ((phase.batch_large, phase.steps_large, 1 - small_share),
                                    (phase.batch_small, phase.steps_small, small_share)):
            if share > 0 and batch:
                key = (phase.resolution, batch, phase.dropout)
                minis, _ = out.get(key, (0.0, steps))
                out[key] = (minis + commits * share, steps)
    return out


def walk_shapes(p: dict) -> tuple[list, int, str]:
    """The shapes to walk (resolution, batch, dropout), the model width and where they came from."""
    if "walk" in p:
        return [list(s) for s in p["walk"]], p["width"], "fixed shapes of this size"
    cfg, plan, source = study("hybrid")
    return [list(k) for k in usage(plan)], cfg.model.width, source


# -- the subprocess ------------------------------------------------------------------------------------------------
def own_cpu() -> float:
    """CPU seconds of this process and its ended children (the C++ compiler runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def child(spec: dict) -> dict:
    import torch
    from torch._dynamo.utils import counters

    from .common import NO_DECAY, TIMING_LR, new_model, new_trainer, random_batches
    from .timing import compare, interleave
    from .trainer_vs_loop import bare_loop

    torch.set_num_threads(1)
    setting, width, backend = spec["setting"], spec["width"], spec["backend"]

    class BatchDynamic(torch.nn.Module):
        """Marks the batch dimension of every input dynamic before the compiled model sees it."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            torch._dynamo.mark_dynamic(x, 0)
            return self.inner(x)

    def compiled_trainer():
        model = new_model(width)
        net = torch.compile(model, dynamic=False if setting.startswith("static") else None, backend=backend)
        return new_trainer(BatchDynamic(net) if setting == "batch" else net, **NO_DECAY), model

    trainer, model = compiled_trainer()
    frames = lambda: counters["frames"]["total"]  # noqa: E731 - dynamo's count of compiled frames
    walk = []
    for resolution, batch, dropout in spec["walk"]:
        model.set_dropout(dropout)
        one = random_batches(1, batch, resolution)
        calls = []
        for _ in range(2):  # the first call compiles (or not), the second does not
            start, cpu = time.perf_counter(), own_cpu()
            trainer.train(one, TIMING_LR)
            calls.append((time.perf_counter() - start, own_cpu() - cpu))
        walk.append({"resolution": resolution, "batch": batch, "dropout": dropout, "frames": frames(),
                     "compile_s": max(0.0, calls[0][1] - calls[1][1]),
                     "compile_wall_s": max(0.0, calls[0][0] - calls[1][0])})
    # a second worker's model (the simulated executor builds one per worker) at the first shape
    second, second_model = compiled_trainer()
    resolution, batch, dropout = spec["walk"][0]
    second_model.set_dropout(dropout)
    before, cpu = frames(), own_cpu()
    second.train(random_batches(1, batch, resolution), TIMING_LR)
    second_worker = {"new_frames": frames() - before, "first_call_s": own_cpu() - cpu}
    steady = []
    for resolution, batch in spec["steady"]:
        dropout = next((d for r, b, d in spec["walk"] if (r, b) == (resolution, batch)), 0.2)
        model.set_dropout(dropout)
        steps = max(1, round(spec["images"] / batch))
        batches = random_batches(steps, batch, resolution)
        bare_model = new_model(width)
        bare_model.set_dropout(dropout)
        bare_opt = torch.optim.SGD(bare_model.parameters(), lr=TIMING_LR, momentum=0.9)
        eager_model = new_model(width)
        eager_model.set_dropout(dropout)
        eager = new_trainer(eager_model, **NO_DECAY)
        timed = interleave({"bare": lambda: bare_loop(bare_model, bare_opt, batches),
                            "eager": lambda: eager.train(batches, TIMING_LR),
                            "compiled": lambda: trainer.train(batches, TIMING_LR)}, spec["rounds"], warmup=1)
        steady.append({"resolution": resolution, "batch": batch, "steps": steps,
                       "eager_s": timed["eager"].median_of("cpu") / steps,
                       "compiled_s": timed["compiled"].median_of("cpu") / steps,
                       "speedup": compare(timed["compiled"], timed["eager"], "cpu", invert=True).ratios,
                       "vs_bare": compare(timed["compiled"], timed["bare"], "cpu", invert=True).ratios,
                       "eager_vs_bare": compare(timed["eager"], timed["bare"], "cpu", invert=True).ratios})
    limit = getattr(torch._dynamo.config, "recompile_limit", None) or torch._dynamo.config.cache_size_limit
    return {"setting": setting, "walk": walk, "second_worker": second_worker, "steady": steady,
            "recompiles": walk[-1]["frames"] - 1, "recompile_limit": limit}


def spawn(spec: dict, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCHINDUCTOR_CACHE_DIR": str(cache),
           "TORCHINDUCTOR_COMPILE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.compile_cost", json.dumps(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"compile_cost child ({spec['setting']}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- break-even ----------------------------------------------------------------------------------------------------
def saving_per_batch(steady: dict, speedup=statistics.median) -> float:
    """CPU seconds a compiled batch saves: eager seconds per batch x (1 - 1 / speed-up), the speed-up being the
    median (or, with ``speedup``, another summary) of the per-round eager / compiled ratios."""
    return steady["eager_s"] * (1 - 1 / speedup(steady["speedup"]))


def break_even(compile_s: float, saving_s: float, mini_epochs: float) -> float | None:
    """Mini-epochs after which a run has saved its compile seconds: compile / (saving over the run / its
    mini-epochs); None when compiling saves nothing."""
    return compile_s / (saving_s / mini_epochs) if saving_s > 0 else None


def scheme_rows(cold: dict, warm: dict | None, overrides=tuple(STUDY)) -> tuple[list[dict], str]:
    """Per scheme of the study (``overrides``): its shapes' compile seconds (cold and warm cache) against what the
    compiled steps save over the run, at the speed-ups measured in ``cold`` (per-round medians, interval ends)."""
    compile_at = {(w["resolution"], w["batch"], w["dropout"]): w["compile_s"] for w in cold["walk"]}
    warm_at = {(w["resolution"], w["batch"], w["dropout"]): w["compile_s"] for w in (warm or {}).get("walk", [])}
    speed = {(s["resolution"], s["batch"]): s for s in cold["steady"]}
    rows, source = [], ""
    for scheme in SCHEMES:
        _, plan, source = study(scheme, overrides)
        used = usage(plan)
        if not all(key in compile_at and key[:2] in speed for key in used):
            continue
        minis = sum(m for m, _ in used.values())
        cold_s = sum(compile_at[key] for key in used)
        warm_s = sum(warm_at[key] for key in used) if all(key in warm_at for key in used) else None

        def saving(pick_speedup) -> float:
            return sum(count * steps * saving_per_batch(speed[key[:2]], pick_speedup)
                       for key, (count, steps) in used.items())

        from .timing import median_interval
        mid = saving(statistics.median)
        lo = saving(lambda r: (median_interval(r) or (min(r), max(r)))[0])
        hi = saving(lambda r: (median_interval(r) or (min(r), max(r)))[1])
        bounds = [break_even(cold_s, hi, minis), break_even(cold_s, lo, minis)]
        rows.append({"scheme": scheme, "shapes": len(used), "mini_epochs": minis, "compile_s": cold_s,
                     "warm_s": warm_s, "saving_s": mid, "break_even": break_even(cold_s, mid, minis),
                     "break_even_interval": [NEVER if b is None else b for b in bounds],
                     "break_even_warm": break_even(warm_s, mid, minis) if warm_s is not None else None,
                     "pays": mid > cold_s})
    return rows, source


def compile_headline(row: dict, rounds: int) -> dict:
    """The headline from a scheme's break-even row: its break-even (``never`` where the compiled steps save nothing)
    against the run's mini-epochs, decided when the whole interval (from the speed-up's) is on one side."""
    run = row["mini_epochs"]
    best, worst = (math.inf if b == NEVER else b for b in row["break_even_interval"])
    value = row["break_even"]
    return {"label": f"break-even of a study {row['scheme']} run, mini-epochs (cold compile; the run has {run:g}; "
                     f"compiled steps save {row['saving_s']:.1f} s against {row['compile_s']:.0f} s of compiling)",
            "value": NEVER if value is None else value, "target": run, "higher_is_better": False,
            "interval": row["break_even_interval"], "clock": "cpu", "rounds": rounds,
            "met": value is not None and value <= run, "decided": best > run or worst <= run}


def run(size: str = "full") -> dict:
    from .timing import median_interval

    p = pick(SIZES, size)
    walk, width, source = walk_shapes(p)
    steady = [[r, b] for r, b, _ in walk] + [list(s) for s in p["extra_steady"]]
    out = {}
    with tempfile.TemporaryDirectory(prefix="dbsl-bench-compile-") as tmp:
        for setting in p["settings"]:
            cache = Path(tmp) / ("static" if setting.startswith("static") else setting)
            spec = {"setting": setting, "width": width, "backend": p["backend"], "walk": walk,
                    "steady": [] if setting.endswith("_warm") else steady, "rounds": p["rounds"],
                    "images": p["images"]}
            out[setting] = spawn(spec, cache)
    rows = []
    for setting, data in out.items():
        speed = {(s["resolution"], s["batch"]): s for s in data["steady"]}
        previous = 0
        for w in data["walk"]:
            s = speed.get((w["resolution"], w["batch"]))
            iv = median_interval(s["speedup"]) if s else None
            bare_iv = median_interval(s["vs_bare"]) if s else None
            rows.append({"setting": setting, "resolution": w["resolution"], "batch": w["batch"],
                         "dropout": w["dropout"], "compile_s": w["compile_s"], "compile_wall_s": w["compile_wall_s"],
                         "frames": w["frames"] - previous,
                         "speedup": statistics.median(s["speedup"]) if s else None,
                         "interval": list(iv) if iv else None,
                         "vs_bare": statistics.median(s["vs_bare"]) if s else None,
                         "vs_bare_interval": list(bare_iv) if bare_iv else None,
                         "eager_ms": 1e3 * s["eager_s"] if s else None,
                         "saving_ms": 1e3 * saving_per_batch(s) if s else None})
            previous = w["frames"]
        for s in data["steady"]:
            if (s["resolution"], s["batch"]) in {(w["resolution"], w["batch"]) for w in data["walk"]}:
                continue
            iv, bare_iv = median_interval(s["speedup"]), median_interval(s["vs_bare"])
            rows.append({"setting": f"{setting} (outside the walk)", "resolution": s["resolution"],
                         "batch": s["batch"], "speedup": statistics.median(s["speedup"]),
                         "interval": list(iv) if iv else None, "vs_bare": statistics.median(s["vs_bare"]),
                         "vs_bare_interval": list(bare_iv) if bare_iv else None,
                         "eager_ms": 1e3 * s["eager_s"], "saving_ms": 1e3 * saving_per_batch(s)})
    cold = out[p["settings"][0]]
    schemes, study_source = scheme_rows(cold, out.get("static_warm")) if "walk" not in p else ([], "")
    notes = [f"model: ResNet-18 width {width}; walk: {source}; backend {p['backend']}; one torch thread, "
             "TORCHINDUCTOR_COMPILE_THREADS=1; compile s = first call - second call at a new shape, CPU seconds of "
             "the process and its compiler subprocesses",
             "recompiles: " + "; ".join(f"{s} {d['recompiles']} (dynamo's recompile limit {d['recompile_limit']})"
                                         for s, d in out.items()),
             "a second worker's compiled model at the walk's first shape: " + "; ".join(
                 f"{s} {d['second_worker']['new_frames']} new compiled frames, first call "
                 f"{d['second_worker']['first_call_s']:.2f} s" for s, d in out.items()),
             f"speed-ups: CPU seconds, medians of per-round ratios over {p['rounds']} interleaved rounds (bare eager "
             "NCHW loop, eager dbsl trainer, compiled dbsl trainer)"]
    tables = []
    if schemes:
        tables.append({"title": "Break-even per scheme of the study (static shapes, cold cache = a sweep's first "
                                "run; warm = every later run)", "columns": SCHEME_COLUMNS, "rows": schemes})
        notes.append("break-even: compile CPU s / (saving over the run / the run's mini-epochs); the saving uses "
                     "the measured per-batch CPU seconds and speed-ups at each shape, the mini-epochs per shape from "
                     f"the plan ({study_source}), split between B_L and B_S workers as n - n_S : n_S; the interval "
                     "comes from the speed-up's 95 % interval (the compile time is one measurement)")
        headline = compile_headline(schemes[0], p["rounds"])
        target = "compile pays within the run: break-even <= the run's mini-epochs"
    else:
        headline = {"label": f"recompiles over the walk, {p['settings'][0]} (vs {p['settings'][1]})",
                    "value": out[p["settings"][0]]["recompiles"], "compare": out[p["settings"][1]]["recompiles"],
                    "target": None}
        target = "reported (break-even needs the study's shapes: full size)"
    return result(NAME, TITLE, target, COLUMNS, rows, headline=headline, notes=notes, tables=tables,
                  recompiles={s: d["recompiles"] for s, d in out.items()},
                  second_worker_frames={s: d["second_worker"]["new_frames"] for s, d in out.items()},
                  measured={s: {"walk": d["walk"], "steady": d["steady"]} for s, d in out.items()})


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
