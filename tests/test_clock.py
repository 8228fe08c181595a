"""The modelled clock and the sync rules on it (dbsl/ps/clock.py), replayed without tensors: a server with an empty
model, workers that only say how long their mini-epoch takes. Expected arrivals are worked out by hand below."""
from __future__ import annotations

import pytest

from dbsl.plan import build_plan
from dbsl.ps.clock import ModelledClock, VirtualRun
from dbsl.ps.server import ParameterServer, SyncPolicy


class Replay(VirtualRun):
    """Worker r's every mini-epoch takes durations[r] modelled seconds; arrivals are only counted."""

    def __init__(self, server, durations):
        super().__init__(server, sorted(durations))
        self.durations, self.arrivals = durations, []

    def begin(self, rank):
        return self.durations[rank]

    def arrive(self, rank, now):
        commit = self.server.push(rank, {})
        self.arrivals.append((commit, rank, now))
        return [commit]

    def arrive_round(self, ranks, end):
        commits = self.server.push_round(ranks, [{} for _ in ranks])
        self.arrivals += [(c, r, end) for c, r in zip(commits, ranks)]
        return commits


def replay(compose, durations, epochs, sync="ASP", staleness=0):
    cfg = compose(["experiment=smoke", f"ps.num_workers={len(durations)}", "scheme=baseline",
                   f"schedule.epochs={epochs}", "optim.lr_milestones=[]", "schedule.cycle_ends=[]"])
    plan = build_plan(cfg, 512)
    run = Replay(ParameterServer(plan, {}, policy=SyncPolicy(sync, staleness)), durations)
    run.run()
    return run


def test_asp_merges_in_the_order_of_finish_times_and_ties_go_to_the_lower_rank(compose):
    # worker 1 takes 2 s, worker 2 takes 3 s, each restarts at once: 1@2, 2@3, 1@4, then 1@6 and 2@6 (a tie: 1
    # first), 1@8 -- six commits for 3 epochs of 2 workers
    run = replay(compose, {1: 2.0, 2: 3.0}, epochs=3)
    assert run.arrivals == [(0, 1, 2.0), (1, 2, 3.0), (2, 1, 4.0), (3, 1, 6.0), (4, 2, 6.0), (5, 1, 8.0)]
    assert run.clock.waited == {1: 0.0, 2: 0.0}


def test_ssp_holds_the_leader_until_the_slowest_pushes(compose):
    # staleness 0, worker 1 takes 1 s, worker 2 takes 3 s. 1 pushes at 1 and leads by one push: held. 2 pushes at 3:
    # both have one push, both go on at 3 (1 waited 3 - 1 = 2 s); 1 pushes at 4 and is held; 2 pushes at 6.
    run = replay(compose, {1: 1.0, 2: 3.0}, epochs=2, sync="SSP", staleness=0)
    assert run.arrivals == [(0, 1, 1.0), (1, 2, 3.0), (2, 1, 4.0), (3, 2, 6.0)]
    assert run.clock.waited[1] == 2.0 and run.clock.waited[2] == 0.0


def test_bsp_rounds_end_with_the_slowest_worker(compose):
    # rounds of 1 s and 3 s mini-epochs end at 3 and 6; worker 1 waits 2 s in each round but the first (counted
    # when it starts again: 2 s before round 2, 2 s before round 3)
    run = replay(compose, {1: 1.0, 2: 3.0}, epochs=3, sync="BSP")
    assert run.arrivals == [(0, 1, 3.0), (1, 2, 3.0), (2, 1, 6.0), (3, 2, 6.0), (4, 1, 9.0), (5, 2, 9.0)]
    assert run.clock.waited == {1: 4.0, 2: 0.0}


def test_a_worker_starts_after_its_finish_and_not_before_its_release():
    clock = ModelledClock([1, 2])
    assert clock.start(1, 5.0) == 5.0 and clock.start(2, 1.0) == 1.0
    assert clock.next_arrival() == (1.0, 2)
    clock.hold(2, 4.0)  # held until 4: starts then, after waiting 3 s
    assert clock.start(2, 1.0) == 5.0 and clock.waited[2] == 3.0
    assert clock.next_arrival() == (5.0, 1)  # a tie at 5: the lower rank first
    assert clock.next_arrival() == (5.0, 2)
    clock.hold(1, 2.0)  # a release before its own finish does not move it back
    assert clock.start(1, 1.0) == 6.0 and clock.now == 6.0


def test_the_clock_resumes_from_its_checkpoint_and_from_one_of_before_it_had_a_home(compose):
    clock = ModelledClock([1, 2])
    clock.start(1, 2.0)
    clock.start(2, 3.0)
    clock.next_arrival()
    again = ModelledClock([1, 2])
    again.load_state_dict(clock.state_dict())
    assert again.next_arrival() == (3.0, 2) and again.finish == {1: 2.0, 2: 3.0}
    # a simulated checkpoint written before dbsl.ps.clock: the running workers' (finish, rank) events, the time
    cfg = compose(["experiment=smoke", "ps.num_workers=2", "scheme=baseline"])
    old = Replay(ParameterServer(build_plan(cfg, 512), {}), {1: 1.0, 2: 1.0})
    old.load_state_dict({"events": [(7.0, 2)], "blocked": [1], "clock": 6.5})
    assert old.clock.next_arrival() == (7.0, 2) and old.blocked == [1] and old.clock.finish == {1: 0.0, 2: 7.0}
    old.clock.hold(1, 7.0)  # released at worker 2's push, as before
    assert old.clock.start(1, 1.0) == pytest.approx(8.0)
