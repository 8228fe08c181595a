"""The modelled clock: each worker's virtual time, in one home for the simulated executor, the distributed service
and the time forecast.

A worker's mini-epoch starts when it may go on: after the end of its previous one, and not before the server last
released it (SSP's hold, the end of a BSP round, or the server's answer in the forecast). It ends ``duration`` later::

    start_r  = max(finish_r, release_r)
    finish_r = start_r + duration
    waited_r += start_r - finish_r(previous)

:class:`VirtualRun` plays the sync rules (ASP, SSP, BSP; :class:`~dbsl.ps.server.SyncPolicy`) on this clock in the
order of finish times (ties by rank); the simulated executor trains at each arrival, the forecast only counts.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Dict, Iterable, List, Sequence, Tuple

if TYPE_CHECKING:  # annotations only: the clock needs no model or plan
    from .server import ParameterServer


class ModelledClock:
    """Each worker's start, finish and release on the virtual clock (seconds).

    ``ordered``: also keep the started mini-epochs in a queue by finish time (:meth:`next_arrival`); the distributed
    service leaves it off, since there the real pushes decide the order.
    """

    def __init__(self, ranks: Iterable[int], ordered: bool = True):
        self.ranks = list(ranks)
        self.finish: Dict[int, float] = dict.fromkeys(self.ranks, 0.0)  # end of the last (or running) mini-epoch
        self.release: Dict[int, float] = dict.fromkeys(self.ranks, 0.0)  # not before this: the server's last release
        self.waited: Dict[int, float] = dict.fromkeys(self.ranks, 0.0)  # modelled seconds spent held
        self.ordered = ordered
        self.running: List[Tuple[float, int]] = []  # (finish, rank) of the started mini-epochs, a heap

    def start(self, rank: int, duration: float, queue: bool = True) -> float:
        """Start ``rank``'s next mini-epoch as soon as it may go on; returns its finish time. ``queue``: it joins the
        arrival queue (not for a BSP round, merged at once)."""
        begin = max(self.finish[rank], self.release[rank])
        self.waited[rank] += begin - self.finish[rank]
        self.finish[rank] = begin + duration
        if self.ordered and queue:
            heapq.heappush(self.running, (self.finish[rank], rank))
        return self.finish[rank]

    def next_arrival(self) -> Tuple[float, int]:
        """The started mini-epoch that finishes first (ties: the lower rank), removed from the queue."""
        return heapq.heappop(self.running)

    def hold(self, rank: int, until: float) -> None:
        """``rank`` may not start again before ``until`` (a held pull released then, or an answer arriving then)."""
        self.release[rank] = max(self.release[rank], until)

    def close_round(self, ranks: Sequence[int]) -> float:
        """BSP: the round ends when its slowest worker finishes; every worker of it goes on from there."""
        end = max(self.finish[r] for r in ranks)
        for r in ranks:
            self.hold(r, end)
        return end

    @property
    def now(self) -> float:
        """The latest finish so far: the modelled time of a run that stops here."""
        return max(self.finish.values(), default=0.0)

    def state_dict(self) -> dict:
        return {"finish": dict(self.finish), "release": dict(self.release), "waited": dict(self.waited),
                "running": [list(e) for e in self.running]}

    def load_state_dict(self, data: dict) -> None:
        self.finish = {int(r): t for r, t in data["finish"].items()}
        self.release = {int(r): t for r, t in data["release"].items()}
        self.waited = {int(r): t for r, t in data.get("waited", dict.fromkeys(self.ranks, 0.0)).items()}
        self.running = [(float(t), int(r)) for t, r in data.get("running", [])]
        heapq.heapify(self.running)


class VirtualRun:
    """The sync rules played on the modelled clock: who starts when, and in which order pushes reach the server.

    A subclass says what a worker does when it starts (:meth:`begin`: pull, and the duration of its mini-epoch) and
    when its push arrives (:meth:`arrive` for ASP/SSP, :meth:`arrive_round` for a BSP round); the rules are here once.
    """

    def __init__(self, server: ParameterServer, ranks: Sequence[int]):
        self.server = server
        self.ranks = list(ranks)
        self.clock = ModelledClock(self.ranks)
        self.blocked: List[int] = []  # SSP: workers whose pull the server holds

    # -- what a subclass does ----------------------------------------------------------------------------------
    def begin(self, rank: int) -> float:
        """``rank`` pulls the global model; returns the modelled duration of the mini-epoch it starts."""
        raise NotImplementedError

    def arrive(self, rank: int, now: float) -> List[int]:
        """ASP/SSP: ``rank``'s push arrives at ``now``; returns the commits it made (one, or none once over)."""
        raise NotImplementedError

    def arrive_round(self, ranks: List[int], end: float) -> List[int]:
        """BSP: the round's pushes are merged at ``end``; returns their commits."""
        raise NotImplementedError

    def after(self, commits: List[int]) -> None:
        """After the commits just made (a checkpoint, say)."""

    def released_at(self, rank: int, now: float) -> float:
        """When a held worker ``rank``, let go by the push that arrived at ``now``, may start again (its pull)."""
        return now

    # -- the rules ---------------------------------------------------------------------------------------------
    def start(self, rank: int, queue: bool = True) -> None:
        self.clock.start(rank, self.begin(rank), queue)

    def run(self) -> None:
        if self.server.policy.rounds:
            self.run_rounds()
        else:
            self.run_async()

    def run_async(self) -> None:
        """ASP (merge on arrival) and SSP (also hold a pull while the pusher leads the slowest by too much)."""
        if not self.clock.running and not self.blocked:
            for rank in self.ranks:
                self.start(rank)
        while not self.server.done:
            now, rank = self.clock.next_arrival()
            commits = self.arrive(rank, now)
            if self.server.done:
                break
            self.blocked.append(rank)  # its next pull, held while the server says so (SSP)
            for other in self.server.released(self.blocked):
                self.blocked.remove(other)
                if other != rank:  # a pull the server held (SSP), answered now; the pusher goes on with its answer
                    self.clock.hold(other, self.released_at(other, now))
                self.start(other)
            self.after(commits)

    def run_rounds(self) -> None:
        """BSP: every worker pulls, trains and pushes once; the round is merged when the slowest arrives."""
        while not self.server.done:
            for rank in self.ranks:
                self.start(rank, queue=False)
            end = self.clock.close_round(self.ranks)
            self.after(self.arrive_round(list(self.ranks), end))

    def state_dict(self) -> dict:
        return {"clock": self.clock.state_dict(), "blocked": list(self.blocked)}

    def load_state_dict(self, data: dict) -> None:
        clock = data["clock"]
        if not isinstance(clock, dict):  # a checkpoint of before the clock had a home: (finish, rank) events, a time
            events = [(float(t), int(r)) for t, r in data.get("events", [])]
            finish = dict.fromkeys(self.ranks, 0.0)
            finish.update({r: t for t, r in events})
            held = float(clock) if self.server.policy.rounds else 0.0  # BSP: every worker goes on from the round's end
            clock = {"finish": finish, "release": dict.fromkeys(self.ranks, held), "running": events}
        self.clock.load_state_dict(clock)
        self.blocked = [int(r) for r in data.get("blocked", [])]
