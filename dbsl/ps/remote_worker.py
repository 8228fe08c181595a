"""A worker process of the distributed executor: pull, train one mini-epoch, push, test the merged model when the
server asks, repeat until told to stop.

The training is :class:`Worker`'s, the same code the simulated executor runs, with the server's config and plan;
the process adds only the conversation (see :mod:`dbsl.ps.remote_server`) and its time breakdown: compute (the
mini-epochs), evaluation, waiting (held by the server: SSP/BSP) and communication (the rest of every call).

Test-only fault injection: ``DBSL_FAULT=<rank>:<k>`` kills worker <rank> (SIGKILL) right after its k-th push was
acknowledged (k = 0: as it starts); ``DBSL_FAULT=<rank>:<k>:hang`` makes it hang there instead (a worker that stops
answering).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from ..config import Config
from ..data import load_dataset
from ..machine import pin_cpu_isa, prepare
from . import remote_server as server
from . import transport
from .context import RunContext
from .launch import Role, die_with_parent
from .messages import TIMES, Pull, Stop

log = logging.getLogger("dbsl")
FAULT_ENV = "DBSL_FAULT"


INTERRUPTED = threading.Event()  # a spawned worker got Ctrl-C (its server handles it)


class RunStopped(RuntimeError):
    """The server ended the run (another worker failed, or the server gave up), or cannot be reached."""


def injected_fault(rank: int) -> tuple[int, str] | None:
    """(pushes, "kill" | "hang") when ``DBSL_FAULT`` targets this worker."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected <rank>:<pushes>[:hang]")
    return (int(parts[1]), parts[2] if len(parts) == 3 else "kill") if int(parts[0]) == rank else None


def _suffer(fault: tuple[int, str] | None, pushes: int) -> None:
    if fault is not None and pushes == fault[0]:
        if fault[1] == "hang":
            while True:
                time.sleep(3600)
        os.kill(os.getpid(), signal.SIGKILL)


class Conversation:
    """The worker's calls to the server, timed: the server's holding time is waiting, the rest communication."""

    def __init__(self, rank: int, timeout: float):
        self.rank, self.timeout = rank, timeout
        self.times = dict.fromkeys(TIMES + ("mini_epochs",), 0.0)

    def __call__(self, fn, *args):
        start = time.perf_counter()
        try:
            answer = transport.call(fn, self.rank, *args, timeout=self.timeout)
        except RuntimeError as err:  # the server is gone or stopped answering: nothing left to report to
            raise RunStopped(f"lost the server: {err}") from None
        waited = getattr(answer, "waited", 0.0)
        self.times["waiting"] += waited
        self.times["communication"] += time.perf_counter() - start - waited
        return answer

    def clock(self, key: str, since: float) -> None:
        self.times[key] += time.perf_counter() - since


def train(role: Role, talk: Conversation) -> None:
    """The worker loop, from the first pull to the server's "done"."""
    cfg, plan = talk(server.describe)
    # the same set-up call as every process (CPU ISA, threads, device); the ISA was capped before joining the server
    device = prepare(cfg.train.threads, sharing=role.local_world_size, cpu_isa=cfg.train.cpu_isa, device=cfg.device,
                     local_rank=role.local_rank)
    ctx = RunContext(cfg, plan, load_dataset(cfg.dataset, cfg.seed), device, record=None)
    pipeline = ctx.new_pipeline()
    worker = ctx.new_worker(role.rank, pipeline)
    evaluator = ctx.new_evaluator(ctx.new_model(initialise=False), pipeline)  # loads the merged model
    fault = injected_fault(role.rank)
    answer = talk(server.pull, None, None, dict(talk.times))
    while isinstance(answer, Pull):
        worker.local_round = answer.local_round
        worker.pull(answer.state, plan.phases[answer.phase], answer.lr)
        phase, start = worker.phase, time.perf_counter()
        stats = worker.train_mini_epoch()
        talk.clock("compute", start)
        talk.times["mini_epochs"] += 1
        ack = talk(server.push, {k: v.detach().cpu() for k, v in worker.state().items()}, stats)
        if isinstance(ack, Stop):
            answer = ack
            break
        if ack.commit is None:  # training ended while this mini-epoch ran
            return
        _suffer(fault, worker.local_round)
        test = None
        if ack.state is not None:
            start = time.perf_counter()
            test = evaluator(ack.state, phase.resolution)
            talk.clock("evaluation", start)
        answer = talk(server.pull, ack.commit, test, dict(talk.times))
    if answer.reason != "done":
        raise RunStopped(answer.reason)


def run_worker(role: Role, cfg: Config, generation: int | None = None) -> None:
    """Serve as worker ``role.rank`` until the run ends; ``cfg`` only says how to reach the server and which CPU
    kernels to use (``train.cpu_isa``, capped before the first tensor operation, which joining the server is)."""
    pin_cpu_isa(cfg.train.cpu_isa)
    _suffer(injected_fault(role.rank), 0)
    timeout = cfg.executor.timeout
    transport.init(role.rank, role.world_size, role.master_addr, role.master_port, max(timeout, transport.STARTUP),
                   generation)
    # a BSP push or SSP pull may be held while the slowest worker trains (the server times that out itself)
    talk = Conversation(role.rank, 2 * timeout + 10)
    try:
        train(role, talk)
        transport.quiet()  # the conversation is over: the pipes closing next are no news
        talk(server.bye, dict(talk.times))
    except RunStopped as stop:
        if not INTERRUPTED.is_set():  # after Ctrl-C the server said so in one line; losing it is no news
            log.error("worker %d: %s", role.rank, stop)
        raise
    except BaseException as err:
        try:
            talk(server.fail, f"{type(err).__name__}: {err}")
        except Exception:  # noqa: BLE001 - the server may be gone; the original error matters
            pass
        raise
    finally:
        transport.shutdown()


def spawned_worker(role: Role, cfg: Config, generation: int, fault: str | None = None) -> None:
    """Entry point of a worker process started by the one-machine launcher (``fault``: the launching process's
    ``DBSL_FAULT``; the fork server that forked this process may have been started with another environment)."""
    die_with_parent()
    # Ctrl-C at a terminal reaches the whole process group: the server stops the run and says so; a worker of its
    # own only notes it, and then loses the server without a word
    signal.signal(signal.SIGINT, lambda *_: INTERRUPTED.set())
    os.environ.pop(FAULT_ENV, None)
    if fault:
        os.environ[FAULT_ENV] = fault
    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s][worker {role.rank}] %(message)s")
    code = 1
    try:
        run_worker(role, cfg, generation)
        code = 0
    except RunStopped:
        pass
    except BaseException:  # noqa: BLE001 - reported to the server; show it here too
        log.exception("worker %d failed", role.rank)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # the conversation is over; skip seconds of interpreter teardown
