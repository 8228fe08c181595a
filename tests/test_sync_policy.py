"""The server's sync policy on a one-number model, with no training: SSP's hold and release, which commit of a
BSP round is tested, and when a checkpoint is due. Expected values are worked out by hand in the comments."""
from __future__ import annotations

import torch

from dbsl.plan import Phase, Plan
from dbsl.ps.server import ParameterServer, SyncPolicy


def plan(workers=3, commits=12, phase_starts=(0,)):
    ends = list(phase_starts[1:]) + [commits]
    phases = tuple(Phase(i, i, lo, hi, 0.1, 8, 0.0, 4, 0, 1, 0, 1.0, 0.0)
                   for i, (lo, hi) in enumerate(zip(phase_starts, ends)))
    return Plan("baseline", 100, workers, 0, 1.0, 33, 0, 1.0, commits, 0, 0.0, "test", phases)


def server(policy, **kw):
    return ParameterServer(plan(**kw), {"w": torch.zeros(1)}, policy=policy)


def test_ssp_holds_the_worker_ahead_by_more_than_the_staleness_and_releases_it_when_the_slowest_catches_up():
    ps = server(SyncPolicy("SSP", staleness=1))
    ps.push(1, ps.state)  # pushes {1: 1, 2: 0, 3: 0}: rank 1 leads by 1 <= 1
    assert ps.may_pull(1)
    ps.push(1, ps.state)  # {1: 2, 2: 0, 3: 0}: leads by 2 > 1, held
    assert not ps.may_pull(1) and ps.may_pull(2) and ps.may_pull(3)
    assert ps.released([1]) == []
    ps.push(2, ps.state)  # {1: 2, 2: 1, 3: 0}: the slowest (3) has not moved, still held
    assert ps.released([1]) == []
    ps.push(3, ps.state)  # {1: 2, 2: 1, 3: 1}: leads by 1, released
    assert ps.released([3, 1]) == [1, 3]  # in rank order


def test_asp_and_bsp_never_hold_a_pull_and_everyone_is_released_once_training_is_over():
    for sync in ("ASP", "BSP"):
        ps = server(SyncPolicy(sync, staleness=0))
        for _ in range(5):
            ps.push(1, ps.state)
        assert ps.may_pull(1)
    ps = server(SyncPolicy("SSP", staleness=0), commits=2)
    ps.push(1, ps.state)
    ps.push(1, ps.state)  # rank 1 leads by 2, but training is over: told to stop, not held
    assert ps.done and ps.released([1, 2]) == [1, 2]


def test_tested_commit_every_m_and_at_the_last_and_once_per_bsp_round():
    ps = server(SyncPolicy("ASP", eval_every=4), commits=10)
    # commits 0..9, m = 4: tested after commits 3 and 7 ((c+1) % 4 == 0) and 9 (the last)
    assert [c for c in range(10) if ps.tested_commit([c]) is not None] == [3, 7, 9]
    bsp = server(SyncPolicy("BSP", eval_every=4), commits=12)
    # rounds of 3: [0,1,2] holds no multiple of 4 -> untested; [3,4,5] holds commit 3 -> its last, 5, is tested
    assert bsp.tested_commit([0, 1, 2]) is None
    assert bsp.tested_commit([3, 4, 5]) == 5
    assert bsp.tested_commit([9, 10, 11]) == 11  # 11 is the last commit


def test_checkpoint_at_phase_starts_and_every_k_commits_but_never_after_the_last():
    ps = server(SyncPolicy("ASP", checkpoint_every=5), commits=12, phase_starts=(0, 6))
    due = []
    for c in range(12):
        ps.push(1 + c % 3, ps.state)
        if ps.checkpoint_due([c]):
            due.append(c)
    # after commit 4 (5 merged: every 5), 5 (6 merged: the phase starting at commit 6), 9 (10 merged); not 11 (done)
    assert due == [4, 5, 9]
    bsp = server(SyncPolicy("BSP", checkpoint_every=5), commits=12)
    bsp.push_round([1, 2, 3], [bsp.state] * 3)  # commits 0..2: 5 not reached
    assert not bsp.checkpoint_due([0, 1, 2])
    bsp.push_round([1, 2, 3], [bsp.state] * 3)  # commits 3..5: the 5th merge is inside this round
    assert bsp.checkpoint_due([3, 4, 5])



def test_checkpoint_after_minutes_of_wall_time_since_the_last_one_even_inside_one_phase():
    import time

    minutes = 0.05  # 3 s
    ps = server(SyncPolicy("ASP", checkpoint_minutes=minutes), commits=12)  # one phase, no checkpoint_every
    ps.push(1, ps.state)
    assert not ps.checkpoint_due([0])  # microseconds after the start: not yet
    time.sleep(60 * minutes + 0.1)
    ps.push(2, ps.state)
    assert ps.checkpoint_due([1])  # 3.1 s since the start >= 3 s
    ps.push(3, ps.state)
    assert not ps.checkpoint_due([2])  # the clock starts again at the checkpoint just taken
    off = server(SyncPolicy("ASP", checkpoint_minutes=0), commits=12)
    time.sleep(0.01)
    off.push(1, off.state)
    assert not off.checkpoint_due([0])  # 0: off
