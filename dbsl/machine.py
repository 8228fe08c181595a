"""What a process runs on: its device, the CPU kernels' instruction set, its torch threads, and the facts about the
machine that a run's record keeps.

:func:`prepare` sets a process up in one call, in the order that matters (the ISA cap before any kernel runs, then
the threads, then the device). The thread policy: ``train.threads`` when set, otherwise each process's share of the
cores when several share them (parallel sweep jobs, the workers of a one-machine distributed run), otherwise
torch's default.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Optional

import torch

from .config import ConfigError


def prepare(threads: int = 0, *, sharing: int | None = None, cpu_isa: str = "native", device: str | None = None,
            local_rank: int = 0) -> Optional[torch.device]:
    """Set this process up: cap the CPU ISA (``train.cpu_isa``; ``native`` leaves it), set torch's threads
    (:func:`set_threads`) and, when ``device`` is given, resolve it (:func:`resolve_device`, which it returns)."""
    pin_cpu_isa(cpu_isa)
    set_threads(threads, sharing)
    return None if device is None else resolve_device(device, local_rank)


# -- threads -------------------------------------------------------------------------------------------------------
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


# -- device and instruction set --------------------------------------------------------------------------------------
def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available on this machine; use device=cpu or device=auto")
    return torch.device(name)


def pin_cpu_isa(isa: str) -> None:
    """Cap the CPU kernels' instruction set: ``avx2`` makes ATen's vectorised kernels and oneDNN's convolutions the
    same on every x86 CPU with AVX2 (an AVX-512 machine otherwise computes different floats from the first step).

    Both libraries read their cap once, at their first kernel; so this must run before the process computes
    anything, or the environment must set ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2 itself."""
    if isa == "native":
        return
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    got = torch.backends.cpu.get_cpu_capability()
    if got not in ("AVX2", "DEFAULT"):
        raise ConfigError(f"train.cpu_isa={isa!r}: this process already runs {got} kernels; start it with "
                          "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 in the environment")


# -- facts -----------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's name with its family and model numbers (machines of one kind can differ: Zen 3 vs Zen 5)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = info.get("model name", platform.machine())
    return f"{name} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"


def environment(device: torch.device) -> dict:
    """What decides a run's floats besides the config: the CPU, the kernels' ISA and the thread count.

    ``cpu_capability`` is ATen's vector ISA (capped by ATEN_CPU_CAPABILITY); oneDNN, which runs the convolutions,
    picks its own ISA (capped by ONEDNN_MAX_CPU_ISA). Runs agree bit for bit only where all of these agree."""
    env = {"device": str(device), "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads()}
    for var in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        env[var] = os.environ.get(var)
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def physical_memory() -> Optional[int]:
    """This machine's RAM in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
