"""The time forecast: a whole run replayed on the modelled clock, without training and without tensors.

Per worker, every mini-epoch is (terms: :mod:`dbsl.forecast.terms`)::

    [rebuild, when its phase changed] + training (Eq. 2 at the plan's step count) + the fixed cost per mini-epoch
    -> push: the model over the server's inbound link (FIFO, full duplex) -> the server's merge (one at a time)
    -> the merged model back over the server's outbound link -> the test of that model, when the commit is tested

(training and the test stretched by the threads per core when a distributed run's workers share one machine's CPU
cores: ``shared_cores``)

and the next mini-epoch starts after that, or later when the sync rules hold the worker (SSP: until the releasing
push is merged and the held pull answered; BSP: the round). A worker reads the phase and LR when the server handles
its arrival (in commit order), not at the later moment its answer reaches it: a phase change can reach a worker one
mini-epoch early in the forecast. The rules and
the clock are the executors' own (:class:`~dbsl.ps.clock.VirtualRun`, :class:`~dbsl.ps.server.ParameterServer`
with an empty model); the server's three resources (inbound link, merge, outbound link) are queues in arrival order.
The whole-run time is the server's clock at the last commit's record (after its test, as the authors log it), plus
the start-up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

from ..plan import Phase, Plan
from ..ps.clock import VirtualRun
from ..ps.server import ParameterServer, SyncPolicy
from ..timemodel import HardwareProfile
from .terms import ForecastTerms

SHARES = ("compute", "overhead", "communication", "evaluation", "waiting")


@dataclass(frozen=True)
class RunShape:
    """What the replay needs of a run besides its plan: the bytes of one model, the test set, the test batch."""

    model_bytes: float
    test_images: int
    eval_batch: int
    cpu_threads: float = 0.0  # the workers' CPU threads in all, when they share one machine's cores (else 0)


@dataclass
class Forecast:
    seconds: float  # the whole run: start-up + the last commit's record
    commits: int
    workers: Dict[int, Dict[str, float]]  # rank -> seconds of compute, overhead, communication, evaluation, waiting
    server: Dict[str, float]  # busy seconds of the inbound link, the merge, the outbound link
    terms: ForecastTerms

    def shares(self) -> Dict[int, Dict[str, float]]:
        """Each worker's time as fractions of the training (the run without its start-up; the five add up to 1)."""
        training = self.seconds - self.terms.startup_s
        return {r: {k: v / training for k, v in w.items()} for r, w in self.workers.items()}

    def server_busy(self) -> Dict[str, float]:
        """Each server resource's busy time as a fraction of the training (the run without its start-up)."""
        return {k: v / (self.seconds - self.terms.startup_s) for k, v in self.server.items()}

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "commits": self.commits,
                "workers": {str(r): w for r, w in self.workers.items()}, "server_busy_seconds": self.server,
                "server_busy_share": self.server_busy(), "terms": self.terms.to_dict()}


class Replay(VirtualRun):
    def __init__(self, plan: Plan, policy: SyncPolicy, profile: HardwareProfile, terms: ForecastTerms,
                 shape: RunShape):
        super().__init__(ParameterServer(plan, {}, policy=policy), range(1, plan.num_workers + 1))
        self.plan, self.profile, self.terms, self.shape = plan, profile, terms, shape
        self.transfer = terms.transfer_s(shape.model_bytes)
        self.stretch = terms.stretch(shape.cpu_threads)
        self.merge = terms.merge_s(shape.model_bytes)
        self.free = {"inbound": 0.0, "merge": 0.0, "outbound": 0.0}  # when each server resource is free again
        self.busy = dict.fromkeys(self.free, 0.0)
        self.spent = {r: dict.fromkeys(SHARES, 0.0) for r in self.ranks}
        self.training: Dict[int, Phase] = {}  # the phase each worker trains in now
        self.pending: Dict[int, tuple] = {}  # rank -> (compute, overhead) of the mini-epoch it runs now
        self.last_phase: Dict[int, int] = {}
        self.recorded = 0.0  # the server's clock at the latest commit's record
        self.merged = 0.0  # when the latest push's merge ended

    # -- a worker's mini-epoch ---------------------------------------------------------------------------------
    def begin(self, rank: int) -> float:
        phase = self.server.phase()
        rebuild = self.terms.rebuild_s if self.last_phase.get(rank, phase.index) != phase.index else 0.0
        self.training[rank], self.last_phase[rank] = phase, phase.index
        compute = self.stretch * self.terms.train_s(phase.resolution, self.plan.batch_size(rank, phase),
                                                    self.plan.steps(rank, phase),
                                                    self.plan.mini_epoch_time(rank, phase)) + rebuild
        self.pending[rank] = (compute, self.terms.commit_overhead_s)
        return compute + self.terms.commit_overhead_s

    def test_s(self, phase: Phase) -> float:
        batch = self.shape.eval_batch
        return self.stretch * self.terms.eval_s(self.shape.test_images, phase.resolution, batch,
                                                self.profile.model(phase.resolution).batch_time(batch))

    def use(self, resource: str, ready: float, seconds: float) -> float:
        """The server's ``resource`` takes ``seconds`` from when it is free and the work is ``ready``; the end."""
        start = max(ready, self.free[resource])
        self.free[resource] = start + seconds
        self.busy[resource] += seconds
        return self.free[resource]

    def answered(self, rank: int, arrival: float, tested: bool) -> None:
        """The worker's push arrived at ``arrival`` (inbound link done): merge, answer, test; then it may go on."""
        merged = self.merged = self.use("merge", arrival, self.merge)
        back = self.use("outbound", merged, self.transfer)
        test = self.test_s(self.training[rank]) if tested else 0.0
        compute, overhead = self.pending.pop(rank)
        self.spent[rank]["compute"] += compute
        self.spent[rank]["overhead"] += overhead
        self.spent[rank]["communication"] += 2 * self.transfer + self.merge
        self.spent[rank]["evaluation"] += test
        self.recorded = max(self.recorded, back + test)
        self.clock.hold(rank, back + test)

    def released_at(self, rank: int, now: float) -> float:
        """SSP: a held worker's pull is answered once the releasing push is merged, over the outbound link."""
        self.spent[rank]["communication"] += self.transfer
        return self.use("outbound", self.merged, self.transfer)

    # -- the rules' hooks --------------------------------------------------------------------------------------
    def arrive(self, rank: int, now: float) -> List[int]:
        commit = self.server.push(rank, {})
        if commit is None:
            return []
        arrival = self.use("inbound", now, self.transfer)
        self.answered(rank, arrival, self.server.tested_commit([commit]) is not None)
        return [commit]

    def arrive_round(self, ranks: List[int], end: float) -> List[int]:
        commits = self.server.push_round(ranks, [{} for _ in ranks])
        tested = self.server.tested_commit(commits)
        arrivals = {r: self.use("inbound", self.clock.finish[r], self.transfer)
                    for r in sorted(ranks, key=lambda r: (self.clock.finish[r], r))}
        last = max(arrivals.values())
        for rank, commit in zip(ranks, commits):  # the round is merged once every push is in
            self.answered(rank, last, commit == tested)
        return commits

    def result(self) -> Forecast:
        """The forecast; a mini-epoch the end of training cut off (never merged) counts as computing until then."""
        for rank, (compute, overhead) in self.pending.items():
            begun = self.clock.finish[rank] - compute - overhead
            self.spent[rank]["compute"] += min(compute, max(0.0, self.recorded - begun))
        for spent in self.spent.values():
            spent["waiting"] = max(0.0, self.recorded - sum(v for k, v in spent.items() if k != "waiting"))
        return Forecast(self.terms.startup_s + self.recorded, self.server.commits, self.spent, dict(self.busy),
                        self.terms)


def replay(plan: Plan, policy: SyncPolicy, profile: HardwareProfile, terms: ForecastTerms,
           shape: RunShape) -> Forecast:
    run = Replay(plan, policy, profile, terms, shape)
    run.run()
    return run.result()
