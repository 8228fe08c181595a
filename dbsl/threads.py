"""How many CPU threads torch uses in a process: ``train.threads`` when set, otherwise each process's share of the
cores when several share them (parallel sweep jobs, the workers of a one-machine distributed run)."""
from __future__ import annotations

import os

import torch


def cpu_threads_per_process(processes: int) -> int:
    """Threads each of ``processes`` CPU processes may use without oversubscribing the machine."""
    return max(1, (os.cpu_count() or 1) // processes)


def set_threads(threads: int = 0, sharing: int | None = None) -> None:
    """``threads`` (train.threads) when set; else, with ``sharing`` processes on this machine's cores, each its share
    (torch's default of one thread per core in every one of them slows them all down many times over); else leave
    torch's default."""
    if threads:
        torch.set_num_threads(threads)
    elif sharing:
        torch.set_num_threads(cpu_threads_per_process(sharing))
