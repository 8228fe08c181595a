"""How a process is set up (dbsl/machine.py): the one thread-count policy, and prepare() in one call."""
from __future__ import annotations

import os

import torch

from dbsl.machine import cpu_threads_per_process, set_threads


def test_threads_share_the_cores_unless_set(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    try:
        assert cpu_threads_per_process(3) == 2 and cpu_threads_per_process(16) == 1  # 8 // 3; never 0
        set_threads(0, sharing=4)
        assert torch.get_num_threads() == 2
        set_threads(3, sharing=4)  # train.threads wins
        assert torch.get_num_threads() == 3
        set_threads(0)  # one process, nothing set: torch's default is left alone
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_prepare_sets_a_process_up_in_one_call(monkeypatch):
    from dbsl.config import ConfigError
    from dbsl.machine import prepare

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    try:
        assert prepare(0, sharing=2) is None and torch.get_num_threads() == 4  # no device asked: none resolved
        assert prepare(1, device="cpu") == torch.device("cpu") and torch.get_num_threads() == 1
        assert "ATEN_CPU_CAPABILITY" not in os.environ  # cpu_isa=native (the default) leaves the kernels alone
        if not torch.cuda.is_available():
            try:
                prepare(device="cuda")
                raise AssertionError("device=cuda without CUDA was accepted")
            except ConfigError as err:
                assert "CUDA is not available" in str(err)
    finally:
        torch.set_num_threads(before)
