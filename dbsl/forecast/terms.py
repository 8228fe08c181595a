"""The costs of a run besides training, as the time forecast counts them: each a named option with a stated default.

Training comes from the hardware profile's time model (Eq. 2 at the plan's step counts), as for every plan; the
terms here never change a plan (B_S, Eq. 8, stays where the profile puts it). Where a term was fitted (the paper's
tables, this machine's records: :mod:`dbsl.forecast.paper`, :mod:`dbsl.forecast.records`), ``source`` says so.
Files: ``results/conf/forecast/<hardware>.yaml`` (this machine's), else ``dbsl/conf/forecast/<hardware>.yaml``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import yaml

from ..config import ConfigError
from .. import layout

TABLES = ("eval_per_image", "batch_time_fit", "source")  # not settable with --set (a file sets them)
POSITIVE = ("link_gbit", "merge_gbyte_s", "core_efficiency")  # rates: 0 would be endless work (inf: instantaneous)
PACKAGED = Path(__file__).resolve().parent.parent / "conf" / "forecast"


@dataclass(frozen=True)
class ForecastTerms:
    link_gbit: float = 1.0  # every node's network link, Gbit/s, full duplex (paper 5.1: 1 Gbps Ethernet)
    latency_s: float = 0.0005  # one message's latency on the link
    bytes_per_value: int = 4  # weights travel as float32 (the authors: get_weights() numpy arrays)
    merge_gbyte_s: float = 2.0  # the server's merge, in bytes of the model per second (w <- (w + f w_i)/(1 + f))
    eval_fraction: float = 1 / 3  # a tested image costs this share of a trained one at the same size (forward only)
    eval_per_image: Dict[int, float] = field(default_factory=dict)  # measured s per test image by px (wins)
    batch_time_fit: Dict[int, List[float]] = field(default_factory=dict)  # px -> [a, b]: the forecast's own
    # t(B) = a B + b of a training batch (fitted on whole mini-epochs); wins over the profile's, never moves a plan
    rebuild_s: float = 0.0  # a worker's rebuild when its phase changes (data pipeline, model, optimiser)
    startup_s: float = 0.0  # server start to the first pull (counted once)
    commit_overhead_s: float = 0.0  # a fixed cost of every mini-epoch on the worker (the paper's: fitted)
    shared_cores: float = 0.0  # executor=distributed on one CPU machine: the cores its workers share (0: each worker
    # has its own device, as the paper's GPUs); training and tests then stretch by the workers' threads per core ...
    core_efficiency: float = 1.0  # ... and by 1 / this: a thread's speed with every shared core busy, as a share of
    # its speed alone (caches, memory bandwidth, clock; dbsl calibrate measures it with the run's own workers)
    source: str = "defaults"  # where the values come from

    @classmethod
    def training_only(cls) -> "ForecastTerms":
        """Nothing but training: the clock the simulated executor keeps (``modelled_time``)."""
        return cls(link_gbit=math.inf, latency_s=0.0, merge_gbyte_s=math.inf, eval_fraction=0.0,
                   source="training only (the time model)")

    def stretch(self, cpu_threads: float) -> float:
        """How much longer a worker computes when the run's workers, ``cpu_threads`` threads in all, share
        ``shared_cores`` cores: threads per core (at least 1) over ``core_efficiency`` (no sharing: 1). All workers
        are taken to compute at once, as under ASP; while some wait (BSP, SSP) the others get more than their
        share."""
        if not self.shared_cores or not cpu_threads:
            return 1.0
        return max(1.0, cpu_threads / self.shared_cores) / self.core_efficiency

    def transfer_s(self, nbytes: float) -> float:
        """One model over one link: latency + bytes / bandwidth."""
        return self.latency_s + nbytes * 8 / (self.link_gbit * 1e9)

    def merge_s(self, nbytes: float) -> float:
        return nbytes / (self.merge_gbyte_s * 1e9)

    def train_s(self, resolution: int, batch: int, steps: int, planned: float) -> float:
        """A mini-epoch of ``steps`` batches of ``batch`` at ``resolution``: the forecast's own fit where it has
        one, else ``planned`` (the plan's: Eq. 2 on the hardware profile)."""
        fit = self.batch_time_fit.get(resolution)
        return steps * (fit[0] * batch + fit[1]) if fit else planned

    def eval_s(self, images: int, resolution: int, batch: int, batch_train_s: float) -> float:
        """Testing ``images`` at ``resolution`` in batches of ``batch``: the measured seconds per image, else
        ``eval_fraction`` of training the same batches (``batch_train_s``: the time model's t(batch), Eq. 2)."""
        per_image = self.eval_per_image.get(resolution)
        if per_image is not None:
            return images * per_image
        return self.eval_fraction * batch_train_s * math.ceil(images / batch)

    def with_values(self, assignments: Iterable[str]) -> "ForecastTerms":
        """``name=value`` assignments (``--set link_gbit=10``) over these terms."""
        known = {f.name: f for f in fields(self)}
        changes = {}
        for item in assignments:
            name, sep, value = item.partition("=")
            if not sep or name not in known or name in TABLES:
                raise ConfigError(f"--set {item}: expected NAME=VALUE with NAME one of "
                                  f"{', '.join(n for n in known if n not in TABLES)}")
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"--set {item}: {value!r} is not a number") from None
            if name in POSITIVE and not number > 0:
                raise ConfigError(f"--set {item}: must be > 0 (inf: no cost)")
            if not number >= 0:
                raise ConfigError(f"--set {item}: must be >= 0")
            if name == "bytes_per_value":
                if number not in (1, 2, 4, 8):
                    raise ConfigError(f"--set {item}: must be 1, 2, 4 or 8 (bytes of one weight)")
                number = int(number)
            changes[name] = number
        return replace(self, **changes, source=f"{self.source}; set {', '.join(changes)}" if changes else self.source)

    def to_dict(self) -> dict:
        return asdict(self)


def load_terms(hardware: str, results_dir: Optional[Path] = None) -> ForecastTerms:
    """The forecast terms of a hardware profile: this machine's file, else the packaged one, else the defaults."""
    for folder in ([layout.conf_dir(results_dir, "forecast")] if results_dir else []) + [PACKAGED]:
        path = folder / f"{hardware}.yaml"
        if path.is_file():
            return read_terms(path)
    return ForecastTerms(source=f"defaults (no forecast terms for hardware={hardware})")


def read_terms(path: Path) -> ForecastTerms:
    try:
        data = yaml.safe_load(path.read_text()) or {}
        data["eval_per_image"] = {int(k): float(v) for k, v in (data.get("eval_per_image") or {}).items()}
        data["batch_time_fit"] = {int(k): [float(x) for x in v] for k, v in (data.get("batch_time_fit") or {}).items()}
        return ForecastTerms(**data)
    except (OSError, yaml.YAMLError, TypeError, ValueError) as err:
        raise ConfigError(f"{path}: not a forecast-terms file ({err}); fix it or remove it") from None

