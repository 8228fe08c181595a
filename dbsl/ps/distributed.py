"""The distributed executor: a server process (rank 0) and n worker processes (ranks 1..n) over torch.distributed.

The same :class:`ParameterServer`, :class:`Worker` and :class:`Monitor` as the simulated executor; the server
process's conversation and RPC entry points are :mod:`dbsl.ps.remote_server`, the worker loop
:mod:`dbsl.ps.remote_worker`, the wire :mod:`dbsl.ps.transport`, the processes :mod:`dbsl.ps.launch`. This module
wires them up for one run.

A worker that dies, fails or stays silent for ``executor.timeout`` seconds (while the server is not holding it)
ends the run with :class:`WorkerFailure` naming the worker and the last commit; everything recorded so far stays,
and ``resume=true`` continues from the last checkpoint (saved at every phase change, every ``checkpoint_every``
commits and every ``checkpoint_minutes``); workers then re-pull and their momentum starts from zero.
"""
from __future__ import annotations

import logging
import os
import time

from ..config import Config
from . import transport
from .context import RunContext
from .launch import LocalWorkers, check_world_size, role_from_env
from .remote_server import ParameterService, serving
from .remote_worker import FAULT_ENV, run_worker, spawned_worker
from .supervisor import WorkerFailure

log = logging.getLogger("dbsl")

# -- the executor -------------------------------------------------------------------------------------------------
def run_distributed(ctx: RunContext, checkpoint: dict | None = None) -> None:
    """Serve one run as rank 0; on one machine spawn the n workers first (torchrun starts them otherwise)."""
    cfg, n = ctx.cfg, ctx.plan.num_workers
    ex = cfg.executor
    role = role_from_env()
    service = ParameterService(ctx, checkpoint)
    if checkpoint is not None:
        log.info("resumed from the checkpoint at commit %d; the workers re-pull", checkpoint["commit"] + 1)
    workers, joined = None, False
    try:
        with serving(service):
            try:
                generation, startup = None, max(ex.timeout, transport.STARTUP)
                if role is None:
                    addr, generation = ex.master_addr, transport.generation()
                    store = transport.host_store(addr, ex.master_port, n + 1, startup)
                    port = store.port
                    workers = LocalWorkers(spawned_worker, n, addr, port, (cfg, generation, os.environ.get(FAULT_ENV)))
                    workers.start()
                    _await_start(workers, store, generation, n, startup)
                else:
                    check_world_size(role, n)
                    addr, port = role.master_addr, role.master_port
                    if not transport.agent_hosts_store(addr, port):
                        transport.host_store(addr, port, n + 1, startup)
                try:
                    transport.init(0, n + 1, addr, port, startup, generation)
                    joined = True
                except RuntimeError as err:
                    raise WorkerFailure(f"the {n} workers did not all join within {startup:g} s at {addr}:{port}: "
                                        f"{err}") from err
                service.supervisor.watch(workers)
                ctx.record.save_final(service.server.state)
            except BaseException as err:
                service.supervisor.abort(f"the server gave up: {err}")
                raise
            finally:
                if joined:
                    transport.shutdown()
    finally:
        if workers is not None:
            workers.stop(grace=5.0 if service.supervisor.failure is None else 2.0)  # those that said bye are gone
        ctx.monitor.extra.update(service.results())


def _await_start(workers: LocalWorkers, store, generation: int, n: int, limit: float) -> None:
    """Wait until the n spawned workers reached the rendezvous; fail at once if one of them died on the way."""
    deadline = time.monotonic() + limit
    while transport.started(store, generation) < n:
        for rank, code in workers.dead():
            raise WorkerFailure(f"worker {rank} died while starting (exit code {code}), before joining the run")
        if time.monotonic() > deadline:
            raise WorkerFailure(f"the {n} worker processes did not all start within {limit:g} s")
        time.sleep(0.05)


def serve_if_worker(cfg: Config) -> dict | None:
    """Under torchrun, ranks 1..n serve as workers here (they write no record); None on rank 0 or without torchrun."""
    role = role_from_env()
    if role is None or role.rank == 0:
        return None
    check_world_size(role, cfg.ps.num_workers)
    run_worker(role, cfg)
    return {"status": "worker", "rank": role.rank}
