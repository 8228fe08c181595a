"""The time forecast: how long a configuration's whole run takes, replayed before training (issue 27).

:func:`forecast_run` replays a config (:mod:`dbsl.forecast.replay`) with the terms of its hardware
(:mod:`dbsl.forecast.terms`); :func:`training_time` is the clock the simulated executor keeps (training only), which
tuning budgets in. The command is ``python -m dbsl.forecast`` / ``dbsl forecast``.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from ..config import Config
from ..data.facts import DATASETS
from ..machine import cpu_threads_per_process
from ..models import build_model
from ..plan import Plan, build_plan, dataset_size
from ..ps.server import SyncPolicy
from ..timemodel import profile_from_config
from .replay import Forecast, RunShape, replay
from .terms import ForecastTerms, load_terms

__all__ = ["Forecast", "ForecastTerms", "RunShape", "forecast_run", "run_shape", "training_time"]


def run_shape(cfg: Config) -> RunShape:
    """The bytes of one model (every floating-point weight and buffer, as pushed), the test set and its batch."""
    d = cfg.dataset
    facts = DATASETS.get(d.name)
    classes = d.num_classes if facts is None else (facts.num_classes or d.num_classes)
    channels = d.channels if facts is None else facts.channels
    with torch.device("meta"):
        model = build_model(cfg.model, classes, channels)
    values = sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())
    test = d.synthetic_test if facts is None else facts.test_size
    test = min(d.num_test, test) if d.num_test else test
    return RunShape(model_bytes=values * 4.0, test_images=test, eval_batch=cfg.train.eval_batch_size,
                    cpu_threads=worker_threads(cfg) * cfg.ps.num_workers if cfg.executor.name == "distributed" else 0)


def worker_threads(cfg: Config) -> int:
    """A distributed worker's torch threads: ``train.threads``, else its share of this machine's cores, as
    :func:`dbsl.machine.prepare` gives every worker of a one-machine run (terms.shared_cores says whether the workers
    share cores at all; on GPUs they do not)."""
    return cfg.train.threads or cpu_threads_per_process(cfg.ps.num_workers)


def forecast_run(cfg: Config, terms: Optional[ForecastTerms] = None, results_dir: Optional[Path] = None,
                 plan: Optional[Plan] = None) -> Forecast:
    """The whole run of ``cfg`` on the modelled clock, with ``terms`` (default: its hardware's)."""
    plan = plan or build_plan(cfg, dataset_size(cfg))
    terms = terms or load_terms(cfg.hardware.name, results_dir)
    shape = run_shape(cfg)
    shape = replace(shape, model_bytes=shape.model_bytes * terms.bytes_per_value / 4)
    return replay(plan, SyncPolicy.of(cfg, plan), profile_from_config(cfg.hardware), terms, shape)


def training_time(cfg: Config, plan: Optional[Plan] = None) -> float:
    """The modelled training time of ``cfg``'s plan: the simulated executor's clock at its last commit (jitter 0)."""
    return forecast_run(cfg, ForecastTerms.training_only(), plan=plan).seconds
