"""What the server process and a worker process of the distributed executor say to each other (pickled over RPC)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch

TIMES = ("compute", "communication", "evaluation", "waiting")  # a worker's seconds, as it measures them


@dataclass
class Pull:
    state: Dict[str, torch.Tensor]
    phase: int  # index into plan.phases
    lr: float
    local_round: int  # the worker's pushes merged so far (its randomness continues from there after a resume)
    waited: float  # seconds the server held this answer (SSP)


@dataclass
class Ack:
    commit: Optional[int]  # None: training was already over, the push was not merged (as the authors' server)
    state: Optional[Dict[str, torch.Tensor]]  # the merged model, when this commit is due for evaluation
    waited: float  # seconds the server held this answer (BSP)


@dataclass
class Stop:
    reason: str  # "done", or why the server gave up
