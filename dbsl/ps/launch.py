"""Where the processes of a distributed run come from.

Under ``torchrun`` every process reads its :class:`Role` from the environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); rank 0 is the server, ranks 1..n the workers. Otherwise the Hydra job
is the server and spawns the n workers itself (:class:`LocalWorkers`), which die with it, whatever kills it, and
are always reaped.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import select
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from ..config import ConfigError
from ..paths import alive

log = logging.getLogger("dbsl")


@dataclass(frozen=True)
class Role:
    rank: int  # 0: the server; 1..n: workers (1..n_S small-batch)
    world_size: int  # n + 1
    local_rank: int  # selects cuda:<local_rank> on a GPU node
    local_world_size: int  # processes sharing this node's CPU
    master_addr: str
    master_port: int


def role_from_env() -> Role | None:
    """The role torchrun gave this process, or None when not launched by torchrun."""
    env = os.environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return None
    return Role(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                int(env.get("LOCAL_WORLD_SIZE", 1)), env["MASTER_ADDR"], int(env["MASTER_PORT"]))


def torchrun_worker() -> bool:
    """A process torchrun started as rank 1..n: a worker of the distributed executor (it writes no record)."""
    role = role_from_env()
    return role is not None and role.rank != 0


def check_world_size(role: Role, num_workers: int) -> None:
    if role.world_size != num_workers + 1:
        raise ConfigError(f"ps.num_workers={num_workers}: torchrun started WORLD_SIZE={role.world_size} processes, "
                          f"but the distributed executor needs one server + {num_workers} workers; set "
                          f"ps.num_workers={role.world_size - 1} or launch {num_workers + 1} processes in total")


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies, so a killed job leaves no orphan worker."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def die_with(pid: int) -> None:
    """Kill this process as soon as process ``pid`` (the server) has exited, from a daemon thread waiting on a pidfd
    (polling on kernels without one)."""
    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            fd = None  # gone already
        except (AttributeError, OSError):  # no pidfd (old kernel or Python): poll
            while alive(pid):
                time.sleep(0.5)
            fd = None
        if fd is not None:
            select.select([fd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="dbsl-server-watch", daemon=True).start()


def _guarded(server: int, target: Callable, *args) -> None:
    """A worker process's entry point: die with the server (whatever kills it), then run ``target(*args)``.

    The worker's parent is the fork server, not the server, and every forked worker holds the fork server's
    'parent alive' pipe open, so without the watch a SIGKILLed server left the fork server, the resource tracker and
    the workers waiting for each other. Ctrl-C reaches the whole process group: the server alone handles it (it
    stops the workers)."""
    die_with(server)
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target(*args)


class LocalWorkers:
    """The n worker processes of a one-machine run; worker r runs ``target(role_r, *args)``.

    They are forked from multiprocessing's fork server, a clean single-threaded process that imported torch and
    dbsl once (safe with CUDA, unlike a fork of the server): later runs of a sweep or a test session start their
    workers without importing torch again. The fork server keeps the environment it was started with. Each worker
    dies with the server (:func:`_guarded`); the fork server and its resource tracker then leave too.
    """

    def __init__(self, target: Callable, num_workers: int, addr: str, port: int, args: Tuple = (),
                 preload: Tuple[str, ...] = ()):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([*preload, target.__module__])  # what the fork server imports once
        self.procs: Dict[int, mp.Process] = {}
        for rank in range(1, num_workers + 1):
            role = Role(rank, num_workers + 1, rank - 1, num_workers, addr, port)
            self.procs[rank] = ctx.Process(target=_guarded, args=(os.getpid(), target, role, *args),
                                           name=f"dbsl-worker{rank}")

    def start(self) -> None:
        for proc in self.procs.values():
            proc.start()

    def dead(self) -> List[Tuple[int, int]]:
        """(rank, exit code) of every worker process that has exited."""
        return [(rank, p.exitcode) for rank, p in self.procs.items() if p.pid is not None and not p.is_alive()]

    def pids(self) -> List[int]:
        return [p.pid for p in self.procs.values() if p.pid is not None]

    def stop(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the workers to exit, then terminate and finally kill the rest."""
        for proc in self.procs.values():
            if proc.pid is not None:
                proc.join(grace)
        for sig in ("terminate", "kill"):
            alive = [p for p in self.procs.values() if p.pid is not None and p.is_alive()]
            if not alive:
                break
            log.warning("%s worker process(es) %s", sig, ", ".join(p.name for p in alive))
            for proc in alive:
                getattr(proc, sig)()
            for proc in alive:
                proc.join(5.0)
