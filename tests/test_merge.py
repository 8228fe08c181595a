"""The server's merge rules on small tensors, and what the server merges."""
from __future__ import annotations

import pytest
import torch

from dbsl.plan import Phase, Plan
from dbsl.ps.merge import average_into, merge_into
from dbsl.ps.server import ParameterServer


def tiny_plan(num_small=1, factor=0.5, commits=3):
    phase = Phase(0, 0, 0, commits, 0.1, 8, 0.0, 4, 2, 1, 1, 1.0, 1.0)
    return Plan("dbsl", 100, 2, num_small, 1.05, 60, 40, factor, commits, 0, 0.0, "test", (phase,))


@pytest.mark.parametrize("rule,f,expected", [
    ("journal", 1.0, 0.5 * 2 + 0.5 * 8),  # a large-batch push: 50/50
    ("journal", 0.5, (2 + 0.5 * 8) / 1.5),  # w = (w + f*w_i)/(1+f)
    ("compsac", 1.0, 0.5 * 2 + 0.5 * 8),
    ("compsac", 0.636, ((2 - 0.636) * 2 + 0.636 * 8) / 2),  # w = ((2-f)*w + f*w_i)/2
])
def test_merge_rules(rule, f, expected):
    g = [torch.full((3,), 2.0, dtype=torch.float64)]
    merge_into(g, [torch.full((3,), 8.0, dtype=torch.float64)], rule, f)
    assert torch.allclose(g[0], torch.full((3,), expected, dtype=torch.float64))


def test_bsp_average_is_factor_weighted():
    g = [torch.zeros(2, dtype=torch.float64)]
    average_into(g, [[torch.tensor([1.0, 1.0], dtype=torch.float64)], [torch.tensor([4.0, 7.0], dtype=torch.float64)]],
                 [0.5, 1.0])
    assert torch.allclose(g[0], torch.tensor([(0.5 * 1 + 4) / 1.5, (0.5 * 1 + 7) / 1.5], dtype=torch.float64))


def state(value):
    return {"w": torch.full((2,), value), "bn.running_mean": torch.full((2,), value),
            "bn.num_batches_tracked": torch.tensor(int(value))}


def test_server_merges_weights_and_bn_statistics_by_role():
    server = ParameterServer(tiny_plan(num_small=1, factor=0.5), state(0.0), "journal")
    assert server.push(1, state(3.0)) == 0  # rank 1 is small: f = 0.5 -> 0 + 3*0.5/1.5
    assert torch.allclose(server.state["w"], torch.full((2,), 1.0))
    assert torch.allclose(server.state["bn.running_mean"], torch.full((2,), 1.0))
    assert server.state["bn.num_batches_tracked"].item() == 0  # integer counters keep the server's value
    assert server.push(2, state(3.0)) == 1  # rank 2 is large: 50/50
    assert torch.allclose(server.state["w"], torch.full((2,), 2.0))
    assert server.pushes == {1: 1, 2: 1} and server.lead(1) == 0


def test_server_can_leave_bn_statistics_alone():
    server = ParameterServer(tiny_plan(), state(0.0), "journal", merge_buffers=False)
    server.push(2, state(4.0))
    assert torch.allclose(server.state["w"], torch.full((2,), 2.0))
    assert torch.allclose(server.state["bn.running_mean"], torch.zeros(2))


def test_pushes_after_the_last_commit_are_dropped():
    server = ParameterServer(tiny_plan(commits=2), state(0.0), "journal")
    server.push(2, state(2.0))
    server.push(2, state(2.0))
    assert server.done
    before = server.state["w"].clone()
    assert server.push(1, state(100.0)) is None
    assert torch.equal(server.state["w"], before) and server.commits == 2
