"""The forecast's costs besides training, measured on this machine by ``dbsl calibrate`` (issue 27), with the run's
own code, and written as its forecast terms ``results/conf/forecast/<name>.yaml`` (:mod:`dbsl.forecast.terms`):

eval_per_image  seconds per test image at each resolution: the run's Evaluator (:mod:`dbsl.ps.evaluator`) testing the
                whole test set, as a worker tests a merged model (median of the repeats)
merge_gbyte_s   the server's merge of one pushed model (:func:`dbsl.ps.merge.merge_into`, the config's rule), in
                bytes of the model per second (median)
latency_s       executor=distributed: one RPC call's fixed cost (the median round trip of an empty call) over the
                executor's transport (:mod:`dbsl.ps.transport`, here on ``executor.master_addr``)
link_gbit       executor=distributed: the model's bits over the median time of a push (the worker's state dict to the
                server) and a pull (a copy of the server's back), less the call's fixed cost
startup_s       executor=distributed: the run's processes started as the executor starts them (the fork server, the
                rendezvous, each worker's dataset, pipeline, model and evaluator) until every worker could pull, plus
                their shut-down; the simulated executor: 0 (its record's clocks start with training)
shared_cores    the CPU cores a one-machine distributed run's workers share (CPU: this machine's; CUDA: 0, a device
                each)
core_efficiency executor=distributed on the CPU: a thread's speed with every core busy, as a share of its speed
                alone: the same training batches (the last phase's resolution at its B_L) timed on one worker while
                the others wait, then on every worker at once; the threads per core explain part of the slowdown,
                this the rest (:func:`core_efficiency`)
batch_time_fit  ``--terms-only`` (terms for an existing profile): the training step timed again at the plan's batch
                sizes, t(B) = a B + b per resolution: the forecast's own training time; the profile is left as it is

The simulated executor moves weights within one process and its clocks count no communication: its link terms are
"none" (latency 0, infinite bandwidth). The hardware profile itself never changes here (it decides every plan).
"""
from __future__ import annotations

import math
import os
import statistics
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List

import torch
import yaml

from ..config import Config
from ..data import DataSource, Pipeline
from ..forecast import worker_threads
from ..forecast.terms import ForecastTerms, read_terms
from ..plan import Plan
from ..record import write_atomic

TIMEOUT = 300.0  # seconds the probe's processes may take to start, answer or leave


@dataclass(frozen=True)
class Repeats:
    evaluation: int = 3  # whole test sets per resolution
    merge: int = 20
    calls: int = 30  # empty RPC calls, and pushes + pulls of the model

    @classmethod
    def quick(cls) -> "Repeats":
        return cls(evaluation=1, merge=5, calls=8)


# -- evaluation and merge (this process) ---------------------------------------------------------------------------
def eval_per_image(evaluate: Callable[[dict, int], object], state: dict, images: int, resolutions: List[int],
                   repeats: int, clock: Callable[[], float] = time.perf_counter) -> Dict[int, float]:
    """Seconds per test image at each resolution: ``evaluate(state, resolution)`` tests ``images`` images (one
    untimed warm-up, then the median of ``repeats``)."""
    out = {}
    for resolution in resolutions:
        evaluate(state, resolution)
        times = []
        for _ in range(repeats):
            start = clock()
            evaluate(state, resolution)
            times.append(clock() - start)
        out[resolution] = statistics.median(times) / images
    return out


def merge_rate(state: dict, rule: str, repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """The server's merge of one pushed copy of ``state`` into it, in GB of the merged tensors per second."""
    from ..ps.merge import merge_into
    from ..ps.server import mergeable_keys

    keys = mergeable_keys(state)
    target = [state[k].clone() for k in keys]
    pushed = [state[k].clone() for k in keys]
    nbytes = sum(t.numel() * t.element_size() for t in target)
    merge_into(target, pushed, rule, 1.0)
    times = []
    for _ in range(repeats):
        start = clock()
        merge_into(target, pushed, rule, 1.0)
        times.append(clock() - start)
    return nbytes / max(statistics.median(times), 1e-9) / 1e9


def refit_training(train_steps: Callable[[int, int, int], None], plan: Plan, repeats: int, samples: int = 1024,
                   clock: Callable[[], float] = time.perf_counter) -> Dict[int, List[float]]:
    """t(B) = a B + b per resolution from the median seconds per batch at the plan's batch sizes there (and half
    and a quarter of the largest, for a line through at least three): the forecast's ``batch_time_fit``."""
    from ..timemodel import fit_linear
    from .measure import median_batch_times, steps_per_repeat

    sizes: Dict[int, set] = {}
    for rank in range(1, plan.num_workers + 1):
        for phase in plan.phases:
            sizes.setdefault(phase.resolution, set()).add(plan.batch_size(rank, phase))
    fit = {}
    for resolution, found in sorted(sizes.items()):
        grid = sorted(found | {max(1, max(found) // 2), max(1, max(found) // 4)})
        steps = {b: steps_per_repeat(b, samples, 2) for b in grid}
        runs = {b: (lambda n, b=b: train_steps(resolution, b, n)) for b in grid}
        medians = median_batch_times(runs, steps, repeats, 1, clock)
        a, b, _ = fit_linear([float(x) for x in grid], [medians[x][0] for x in grid])
        fit[resolution] = [float(a), float(b)]
    return fit


# -- the link and the start-up (the executor's processes) ------------------------------------------------------------
_probe: dict = {}  # the parent (rank 0)'s side of the probe: what the workers reported
_lock = threading.Lock()


def _ready(rank: int) -> None:
    with _lock:
        _probe["ready"].add(rank)
        if len(_probe["ready"]) == _probe["workers"]:
            _probe["all_ready"] = time.perf_counter()
            _probe["event"].set()


def _await_alone() -> None:
    """Every worker but rank 1 waits here while rank 1 trains alone (the probe's first part)."""
    _probe["alone_done"].wait(TIMEOUT)


def _alone(seconds: List[float]) -> None:
    _probe["alone"] = seconds
    _probe["alone_done"].set()


def _together_start() -> None:
    """All the workers leave this call at once (a barrier), to train together."""
    _probe["barrier"].wait(TIMEOUT)


def _together(rank: int, seconds: List[float]) -> None:
    with _lock:
        _probe["together"][rank] = seconds


def _empty() -> None:
    return None


def _push(state: dict) -> None:
    return None


def _pull() -> dict:
    return {k: v.clone() for k, v in _probe["state"].items()}


def _report(times: dict) -> None:
    _probe["times"] = times


def _bye(rank: int) -> None:
    with _lock:
        _probe["byes"].add(rank)
        if len(_probe["byes"]) == _probe["workers"]:
            _probe["left"].set()


def _timed_batches(step, resolution: int, batch: int, steps: int, rounds: int) -> List[float]:
    step.train_steps(resolution, batch, 1)  # warm-up: a new shape
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step.train_steps(resolution, batch, steps)
        times.append(time.perf_counter() - start)
    return times


def probe_worker(role, cfg: Config, plan: Plan, generation: int, calls: int, rounds: int) -> None:
    """A worker process of the probe: start as a run's worker does (the same set-up, data, pipeline, model and
    evaluator) and say it is ready; then time the training step, first rank 1 alone, then every worker at once;
    then (rank 1) time empty calls, pushes and pulls."""
    from ..data import load_dataset
    from ..machine import prepare
    from ..ps import transport
    from ..ps.context import RunContext
    from .measure import steps_per_repeat
    from .step import TrainingStep

    code = 1
    try:
        transport.init(role.rank, role.world_size, role.master_addr, role.master_port, TIMEOUT, generation)
        device = prepare(cfg.train.threads, sharing=role.local_world_size, device=cfg.device,
                         local_rank=role.local_rank)
        source = load_dataset(cfg.dataset, cfg.seed)
        ctx = RunContext(cfg, plan, source, device, record=None)
        pipeline = ctx.new_pipeline()
        worker = ctx.new_worker(role.rank, pipeline)
        ctx.new_evaluator(ctx.new_model(initialise=False), pipeline)
        transport.call(_ready, role.rank, timeout=TIMEOUT)
        phase = plan.phases[-1]  # the largest resolution, at its B_L
        step, steps = TrainingStep(cfg, source, device), steps_per_repeat(phase.batch_large, 1024, 2)
        if role.rank == 1:
            transport.call(_alone, _timed_batches(step, phase.resolution, phase.batch_large, steps, rounds),
                           timeout=TIMEOUT)
        else:
            transport.call(_await_alone, timeout=TIMEOUT)
        transport.call(_together_start, timeout=TIMEOUT)
        transport.call(_together, role.rank, _timed_batches(step, phase.resolution, phase.batch_large, steps, rounds),
                       timeout=TIMEOUT)
        if role.rank == 1:
            state = {k: v.detach().cpu() for k, v in worker.state().items()}
            times: Dict[str, List[float]] = {"empty": [], "push": [], "pull": []}
            for i in range(calls + 1):  # the first round warms up
                t0 = time.perf_counter()
                transport.call(_empty, timeout=TIMEOUT)
                t1 = time.perf_counter()
                transport.call(_push, state, timeout=TIMEOUT)
                t2 = time.perf_counter()
                transport.call(_pull, timeout=TIMEOUT)
                t3 = time.perf_counter()
                if i:
                    times["empty"].append(t1 - t0)
                    times["push"].append(t2 - t1)
                    times["pull"].append(t3 - t2)
            transport.call(_report, times, timeout=TIMEOUT)
        transport.quiet()
        transport.call(_bye, role.rank, timeout=TIMEOUT)
        code = 0
    finally:
        os._exit(code)  # as a run's worker leaves: the conversation is over


@dataclass(frozen=True)
class LinkProbe:
    latency_s: float  # an empty call's median round trip
    link_gbit: float
    startup_s: float  # spawn to every worker ready, plus the shut-down
    push_s: float
    pull_s: float
    model_bytes: float
    alone_s: float  # rank 1's training batches alone (median)
    together_s: float  # the same batches with every worker training at once (median over workers and rounds)


def probe_link(cfg: Config, plan: Plan, state: dict, calls: int, rounds: int = 3) -> LinkProbe:
    """Start ``ps.num_workers`` worker processes as the distributed executor does (:class:`LocalWorkers`, the
    rendezvous, the RPC group) and time their start, their training alone and together, a worker's calls, and
    their leaving."""
    from ..ps import transport
    from ..ps.launch import LocalWorkers

    n, ex = cfg.ps.num_workers, cfg.executor
    _probe.clear()
    _probe.update(workers=n, ready=set(), byes=set(), event=threading.Event(), left=threading.Event(),
                  alone_done=threading.Event(), barrier=threading.Barrier(n), together={},
                  state={k: v.detach().cpu().clone() for k, v in state.items()})
    generation = transport.generation()
    start = time.perf_counter()
    store = transport.host_store(ex.master_addr, ex.master_port, n + 1, TIMEOUT)
    workers = LocalWorkers(probe_worker, n, ex.master_addr, store.port, (cfg, plan, generation, calls, rounds),
                           preload=("dbsl.ps.remote_worker",))  # the fork server imports what a run's imports
    joined = False
    try:
        workers.start()
        transport.init(0, n + 1, ex.master_addr, store.port, TIMEOUT, generation)
        joined = True
        if not _probe["event"].wait(TIMEOUT) or not _probe["left"].wait(4 * TIMEOUT):
            raise RuntimeError(f"the probe's {n} worker processes did not all answer within {TIMEOUT:g} s "
                               f"(dead: {workers.dead()})")
        leaving = time.perf_counter()
    finally:
        if joined:
            transport.quiet()
            transport.shutdown()
        workers.stop(grace=10.0)
    gone = time.perf_counter()
    times = _probe["times"]
    empty, push, pull = (statistics.median(times[k]) for k in ("empty", "push", "pull"))
    nbytes = sum(v.numel() * v.element_size() for v in _probe["state"].values() if v.is_floating_point())
    payload = max((push + pull) / 2 - empty, 1e-9)  # one model's bytes, beyond the call's fixed cost
    together = [t for seconds in _probe["together"].values() for t in seconds]
    return LinkProbe(latency_s=empty, link_gbit=nbytes * 8 / payload / 1e9,
                     startup_s=(_probe["all_ready"] - start) + (gone - leaving), push_s=push, pull_s=pull,
                     model_bytes=nbytes, alone_s=statistics.median(_probe["alone"]),
                     together_s=statistics.median(together))


# -- the terms file --------------------------------------------------------------------------------------------------
def terms_yaml(terms: ForecastTerms, comments: List[str]) -> str:
    """The terms as YAML (an infinite rate as .inf), headed by ``comments``."""
    return "\n".join(f"# {c}" for c in comments) + "\n" + yaml.safe_dump(terms.to_dict(), sort_keys=False)


def write_terms(path: Path, terms: ForecastTerms, comments: List[str]) -> Path:
    """Write atomically after checking that the file reads back as the same terms."""
    text = terms_yaml(terms, comments)
    write_atomic(path, text)
    back = read_terms(Path(path))
    if back != terms:
        raise RuntimeError(f"{path}: the forecast terms do not read back as written")
    return Path(path)


def measure_terms(cfg: Config, plan: Plan, source: DataSource, device: torch.device, repeats: Repeats,
                  say: Callable[[str], None] = print) -> ForecastTerms:
    """Every term above for ``cfg`` (its model, test set, resolutions, merge rule and executor) on ``device``."""
    from ..models import build_model
    from ..ps.evaluator import Evaluator

    t = cfg.train
    model = build_model(cfg.model, source.num_classes, source.channels).to(device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    evaluator = Evaluator(model, Pipeline(source, cfg.dataset.augment, device), device, t.eval_batch_size, t.amp,
                          cfg.optim.kernel_l2, t.channels_last)
    resolutions = sorted(set(cfg.schedule.resolutions))
    evals = eval_per_image(evaluator, state, len(source.test), resolutions, repeats.evaluation)
    for r in resolutions:
        say(f"forecast terms: testing at {r} px takes {evals[r] * 1e3:.4f} ms per image "
            f"({len(source.test)} test images, median of {repeats.evaluation})")
    merge = merge_rate(state, cfg.ps.merge_rule, repeats.merge)
    say(f"forecast terms: the server merges {merge:.3g} GB/s ({cfg.ps.merge_rule} rule)")
    shared = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) \
        if device.type == "cpu" else 0
    terms = ForecastTerms(eval_per_image=evals, merge_gbyte_s=merge, shared_cores=float(shared),
                          link_gbit=math.inf, latency_s=0.0, source="measured by dbsl calibrate")
    if cfg.executor.name != "distributed":
        say("forecast terms: executor=simulated moves weights within one process: no link (latency 0, bandwidth "
            "inf) and no start-up; calibrate with executor=distributed for the distributed executor's")
        return terms
    say(f"forecast terms: starting {cfg.ps.num_workers} worker processes as executor=distributed does "
        f"({cfg.executor.master_addr}) ...")
    link = probe_link(cfg, plan, state, repeats.calls)
    say(f"forecast terms: start-up and shut-down {link.startup_s:.2f} s; an empty call {link.latency_s * 1e3:.2f} "
        f"ms; push {link.push_s * 1e3:.2f} ms and pull {link.pull_s * 1e3:.2f} ms of {link.model_bytes / 2**20:.2f} "
        f"MiB -> {link.link_gbit:.3g} Gbit/s")
    efficiency = core_efficiency(link.alone_s, link.together_s, worker_threads(cfg) * cfg.ps.num_workers, shared)
    if shared:
        say(f"forecast terms: a worker's training batches take {link.alone_s:.3f} s alone and {link.together_s:.3f} s "
            f"with all {cfg.ps.num_workers} training at once on {shared} cores: core efficiency {efficiency:.3f}")
    return replace(terms, link_gbit=link.link_gbit, latency_s=link.latency_s, startup_s=link.startup_s,
                   core_efficiency=efficiency if shared else 1.0)


def core_efficiency(alone_s: float, together_s: float, threads: int, cores: int) -> float:
    """A thread's speed with every core busy, as a share of its speed alone: the slowdown that threads per core
    explain (at least 1) over the slowdown measured (``together_s / alone_s``)."""
    return max(1.0, threads / cores) * alone_s / together_s
