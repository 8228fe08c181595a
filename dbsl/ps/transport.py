"""How weights travel between the server and the workers: torch.distributed.rpc over TensorPipe.

Chosen by measurement (``benchmarks/push_pull.py``; the numbers are in the README's "Real distributed training"): an
RPC push+pull of the state dict was faster than c10d (gloo) send/recv of the same weights as one flat tensor. RPC is
also what the authors used, carries the control messages (phase, LR,
statistics, test results) as plain Python objects, and bounds every call with a timeout.

The rendezvous is a TCPStore whose waits are bounded (``init_rpc``'s own would wait 30 minutes for a worker that
never starts); spawned workers also count themselves in (:func:`started`) so that the launcher can tell a slow
start from a dead worker. Shutdown is never "graceful" (an RPC all-gather that a dead worker would
block); the executor ends the conversation itself (every worker says bye) before shutting down. TensorPipe then
logs one harmless "eof" / "pipe closed" warning per connection, so once the conversation is over every process
lowers the C++ log level to errors (:func:`quiet`).
"""
from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import warnings
from urllib.parse import parse_qsl, urlparse

import torch
import torch.distributed as dist
import torch.distributed.rpc as rpc

log = logging.getLogger("dbsl")

SCHEME = "dbsl"
STARTUP = 300.0  # seconds the processes may take to start and join (imports, CUDA), if executor.timeout is shorter
_hosted: dict[int, dist.TCPStore] = {}  # port -> the store this (rank-0) process hosts
_server = "server"  # the server's RPC name in the current group
_STARTED = "dbsl/started/{}"  # store counter: spawned workers of a generation that reached the rendezvous


def rpc_name(rank: int, generation: int | None) -> str:
    """``server`` / ``worker<rank>``, tagged with the generation when one is given (see :func:`generation`)."""
    name = "server" if rank == 0 else f"worker{rank}"
    return name if generation is None else f"{name}-{generation}"


def host_store(addr: str, port: int, world_size: int, timeout: float) -> dist.TCPStore:
    """The rendezvous store, hosted by rank 0; ``port=0`` picks a free port (read it from ``.port``)."""
    store = dist.TCPStore(addr, port, world_size, True, dt.timedelta(seconds=timeout), wait_for_workers=False)
    _hosted[store.port] = store
    return store


def agent_hosts_store(addr: str, port: int) -> bool:
    """Under torchrun the elastic agent already serves a store at MASTER_ADDR:MASTER_PORT; every rank is a client."""
    return (os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and os.environ.get("MASTER_ADDR") == addr
            and os.environ.get("MASTER_PORT") == str(port))


def _rendezvous(url: str, timeout=None, **kwargs):
    """A ``dbsl://host:port?rank=&world_size=&timeout=[&generation=]`` rendezvous with a bounded wait."""
    parts = urlparse(url)
    query = dict(parse_qsl(parts.query))
    rank, world_size = int(query["rank"]), int(query["world_size"])
    store = _hosted.get(parts.port) if rank == 0 else None
    if store is None:
        store = dist.TCPStore(parts.hostname, parts.port, world_size, False,
                              dt.timedelta(seconds=float(query["timeout"])))
    if "generation" in query:
        # init_rpc prefixes its store keys with a per-process count of earlier init_rpc calls; a process that ran
        # runs before (a sweep, a test session) and freshly spawned workers must use the same prefix
        rpc._init_counter = int(query["generation"])
        if rank:
            store.add(_STARTED.format(query["generation"]), 1)
    yield store, rank, world_size
    raise RuntimeError("a dbsl:// rendezvous cannot be repeated")


def started(store: dist.TCPStore, generation: int) -> int:
    """How many spawned workers of this generation have reached the rendezvous."""
    return store.add(_STARTED.format(generation), 0)


def generation() -> int:
    """This process's count of earlier RPC groups, for workers spawned into its next one.

    torch.distributed.rpc keeps per-process state across groups (the store-key prefix counts init_rpc calls, and
    its internal all-gather numbers its rounds per set of names), so a process that served runs before (a sweep, a
    test session) and freshly spawned workers disagree. The workers adopt the server's counter (:func:`_rendezvous`)
    and every name carries the generation, which makes each group's names new to every process.
    """
    return getattr(rpc, "_init_counter", 0)


def init(rank: int, world_size: int, addr: str, port: int, timeout: float, generation: int | None = None) -> None:
    """Join the RPC group as ``rank`` (0: the server); every rank must arrive within ``timeout`` seconds (also the
    default timeout of a call; :func:`call` always gives its own).

    ``generation``: the launching server's :func:`generation` (one-machine runs); None under torchrun, where every
    process starts fresh."""
    global _server
    try:
        dist.register_rendezvous_handler(SCHEME, _rendezvous)
    except RuntimeError:
        pass  # registered by an earlier run in this process
    url = f"{SCHEME}://{addr}:{port}?timeout={timeout}"  # init_rpc adds rank and world_size
    if generation is not None:
        url += f"&generation={generation}"
    options = rpc.TensorPipeRpcBackendOptions(num_worker_threads=max(16, 2 * world_size + 4), rpc_timeout=timeout,
                                              init_method=url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ProcessGroup.*deprecated")
        rpc.init_rpc(rpc_name(rank, generation), rank=rank, world_size=world_size, rpc_backend_options=options)
    _server = rpc_name(0, generation)


def call(fn, *args, timeout: float):
    """Run ``fn(*args)`` on the server and return its answer (raises after ``timeout`` seconds)."""
    return rpc.rpc_sync(_server, fn, args=args, timeout=timeout)


def _cpp_log_level() -> ctypes.c_int | None:
    """c10's C++ log level (0 info, 1 warning, 2 error), which it reads at every message; None if not found."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libc10.so"))
        return ctypes.c_int.in_dll(lib, "FLAGS_caffe2_log_level")
    except (OSError, ValueError):
        return None


def quiet(level: int | None = 2) -> int | None:
    """Set the C++ log level (default: errors only, for a shutdown after the conversation ended) and return the one
    before, for restoring; None (and nothing changed) where torch does not expose it."""
    flag = _cpp_log_level()
    if flag is None or level is None:
        return None
    before, flag.value = flag.value, level
    return before


def shutdown() -> None:
    """Leave the RPC group without waiting for the others (the executor has already ended the conversation)."""
    try:
        rpc.shutdown(graceful=False)
    except Exception as err:  # noqa: BLE001 - shutting down after a failure must not mask it
        log.debug("rpc shutdown: %s", err)
    for port in list(_hosted):
        _hosted.pop(port)
