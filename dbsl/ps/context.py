"""Everything an executor needs to build the server's model, workers and evaluator of one run."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Config
from ..data import DataSource, Pipeline
from ..models import ResNet18, build_model
from ..plan import Plan
from ..record import RunRecord
from ..local_training import LocalTrainer
from ..monitor import Monitor
from .evaluator import Evaluator
from .server import ParameterServer, SyncPolicy
from .worker import Worker, derive_seed, shards


@dataclass
class RunContext:
    cfg: Config
    plan: Plan
    source: DataSource
    device: torch.device
    record: RunRecord
    monitor: Monitor | None = None

    def new_model(self, initialise: bool = True) -> ResNet18:
        """A model on the run's device; ``initialise=False`` skips the random init (for a worker, whose first pull
        overwrites every weight and buffer: a random init of a wide model costs seconds on a CPU)."""
        if initialise:
            return build_model(self.cfg.model, self.source.num_classes, self.source.channels).to(self.device)
        with torch.device("meta"):
            model = build_model(self.cfg.model, self.source.num_classes, self.source.channels)
        return model.to_empty(device=self.device)

    def new_pipeline(self) -> Pipeline:
        return Pipeline(self.source, self.cfg.dataset.augment, self.device)

    def initial_model(self) -> ResNet18:
        """The global model at commit 0: the same for every executor given the seed."""
        torch.manual_seed(derive_seed(self.cfg.seed, "init"))
        return self.new_model()

    def new_server(self, model: torch.nn.Module) -> ParameterServer:
        cfg = self.cfg
        policy = SyncPolicy.of(cfg, self.plan)
        return ParameterServer(self.plan, model.state_dict(), cfg.ps.merge_rule, cfg.ps.merge_buffers, policy)

    def new_evaluator(self, model: torch.nn.Module, pipeline: Pipeline) -> Evaluator:
        train = self.cfg.train
        return Evaluator(model, pipeline, self.device, train.eval_batch_size, train.amp, self.cfg.optim.kernel_l2,
                         train.channels_last)

    def new_worker(self, rank: int, pipeline: Pipeline) -> Worker:
        cfg = self.cfg
        trainer = LocalTrainer(self.new_model(initialise=False), cfg.optim, self.device, cfg.train.amp,
                               cfg.train.channels_last)
        size = len(self.source.train)
        shard = shards(self.plan, size, cfg.seed)[rank] if cfg.train.sampling == "shard" else None
        return Worker(rank, self.plan, trainer, pipeline, size, cfg.seed, cfg.train.sampling,
                      cfg.optim.momentum_reset, shard)
