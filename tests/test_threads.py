"""The one thread-count policy (dbsl/threads.py)."""
from __future__ import annotations

import os

import torch

from dbsl.threads import cpu_threads_per_process, set_threads


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
