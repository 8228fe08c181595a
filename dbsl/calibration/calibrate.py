"""Calibrate the time model on this machine: ``dbsl calibrate <hydra overrides> [--quick] [--name NAME] [options]``
(:mod:`dbsl.cli.calibrate`, also ``python -m dbsl.calibrate``).

Calibrates the time model on this machine (CUDA or CPU): for each resolution it finds the largest batch B_L
(CUDA: probing for out-of-memory; CPU: the paper's memory predictor against --memory-budget), times the run's
training step (LocalTrainer on Pipeline batches) over a range of batch sizes (warm-up, repeats, median), fits the
paper's line t(B) = a*B + b, keeps the measured table where the line fits badly, writes the hardware profile
``results/conf/hardware/<name>.yaml`` (then ``hardware=<name>``), and checks it as the paper's Table 4 does by
timing whole mini-epochs of the current plan. Tables and a plot go to ``results/calibration/<name>/``. Then it
measures the forecast's other terms (:mod:`dbsl.calibration.overheads`) into ``results/conf/forecast/<name>.yaml``;
``--terms-only`` measures only those, for the profile a run already uses.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Protocol, Sequence

import torch

from .. import layout
from ..config import Config, ConfigError
from ..data import load_dataset
from ..paths import check_output_dir
from ..plan import build_plan
from ..record import versions
from ..timemodel import profile_from_config
from .fit import MAX_RESIDUAL, ResolutionFit, choose_kind, fit_resolution
from .measure import (BatchTiming, Clock, batch_grid, check_budget, largest_fitting_batch, median_batch_times,
                      predict_batch_limit, steps_per_repeat)
from .outputs import batch_time_rows, fit_rows, memory_rows, plot_fit, write_csv
from .overheads import Repeats, measure_terms, refit_training, write_terms
from .profile import check_name, hardware_config, load_profile, write_profile
from .step import TrainingStep
from .validation import plan_mini_epochs, validate_mini_epochs

GIB = 2**30
CPU_MAX_BATCH = 256  # on the CPU every batch fits in RAM; beyond this B_L only makes the CPU runs slow


class Step(Protocol):
    """What calibration needs from a device (the real one: calibration.step.TrainingStep)."""

    probes_out_of_memory: bool

    def train_steps(self, resolution: int, batch_size: int, steps: int) -> None: ...
    def memory(self, resolution: int, batch_size: int) -> float: ...
    def fits(self, resolution: int, batch_size: int) -> Optional[bool]: ...
    def memory_budget(self) -> Optional[float]: ...
    def device_name(self) -> str: ...


@dataclass
class Settings:
    """How much to measure (``Settings.quick`` for --quick: about a minute at width 16 on a 2-core CPU)."""

    resolutions: List[int]
    max_batch: Optional[int] = CPU_MAX_BATCH  # largest B timed (CUDA: None probes up to what fits)
    batch_sizes: Optional[List[int]] = None  # an explicit grid instead of batch_grid(...)
    points: int = 10  # batch sizes timed per resolution
    repeats: int = 5  # timed repeats per batch size (the median is kept)
    warmup: int = 2  # untimed batches before each batch size
    samples_per_repeat: int = 1024  # each timed repeat trains at least this many images ...
    min_steps: int = 2  # ... in at least this many batches
    memory_budget: Optional[float] = None  # bytes a worker's training step may use on the CPU
    memory_points: int = 8  # batch sizes of the memory predictor (paper: 8)
    kind: str = "auto"  # auto | linear | table
    validate: bool = True
    validate_pairs: int = 0  # 0: every (B, d) pair of the plan
    validate_steps: int = 0  # 0: whole mini-epochs
    validate_repeats: int = 3

    @classmethod
    def quick(cls, resolutions: List[int], **kw) -> "Settings":
        base = dict(points=6, repeats=3, warmup=1, samples_per_repeat=256, min_steps=1, memory_points=4,
                    validate_pairs=4, validate_steps=8, validate_repeats=1)
        return cls(resolutions, **{**base, **kw})

    def check(self) -> "Settings":
        if not self.resolutions or any(r < 4 for r in self.resolutions):
            raise ConfigError(f"--resolutions={self.resolutions}: give resolutions >= 4 px, e.g. --resolutions 20,28")
        twice = sorted({r for r in self.resolutions if self.resolutions.count(r) > 1})
        if twice:
            raise ConfigError(f"--resolutions={','.join(map(str, self.resolutions))}: "
                              f"{', '.join(map(str, twice))} px given more than once; give each resolution once")
        if self.batch_sizes is not None and (len(set(self.batch_sizes)) < 3 or min(self.batch_sizes) < 1):
            raise ConfigError(f"--batch-sizes={self.batch_sizes}: give at least 3 different positive batch sizes")
        if self.max_batch is not None and self.max_batch < 4:
            raise ConfigError(f"--max-batch={self.max_batch}: must be >= 4 (3 batch sizes are needed for a line)")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise ConfigError(f"--memory-budget={self.memory_budget / GIB:g}: must be > 0 GiB")
        if self.validate_steps < 0:
            raise ConfigError(f"--validate-steps={self.validate_steps}: must be >= 0 (0: whole mini-epochs)")
        for key in ("points", "repeats", "memory_points", "validate_repeats"):
            if getattr(self, key) < 1 or (key == "points" and self.points < 3):
                raise ConfigError(f"--{key.replace('_', '-')}={getattr(self, key)}: must be >= "
                                  f"{3 if key == 'points' else 1}")
        return self


def calibrate_resolution(bench: Step, resolution: int, s: Settings, clock: Clock = time.perf_counter,
                         report: Callable[[str], None] = print) -> ResolutionFit:
    """B_L, then the timed grid and the line at one resolution."""
    largest = max(s.batch_sizes) if s.batch_sizes else s.max_batch
    probed = None
    if bench.probes_out_of_memory:
        probed = largest_fitting_batch(lambda b: bool(bench.fits(resolution, b)), 64, largest or 1 << 16)
        report(f"{resolution} px: the largest batch that fits is {probed} (probed for out-of-memory)")
        largest = probed
    budget = bench.memory_budget() or s.memory_budget
    predictor, points = predict_batch_limit(lambda b: bench.memory(resolution, b), largest, s.memory_points)
    check_budget(predictor, budget, 4, resolution)
    predicted = predictor.max_batch(budget) if budget else None
    batch_large = probed or (min(largest, predicted) if predicted else largest)
    report(f"{resolution} px: memory M(B) = {predictor.intercept / 2**20:.1f} MiB + B x "
           f"{predictor.slope / 2**20:.3f} MiB (R^2 {predictor.r2:.4f})"
           + (f"; predicted largest batch {predicted} in {budget / GIB:.3g} GiB" if predicted is not None else "")
           + f"; B_L = {batch_large}")
    if s.batch_sizes:
        sizes = sorted(b for b in set(s.batch_sizes) if b <= batch_large)
    else:
        sizes = batch_grid(max(1, min(8, batch_large // 8)), batch_large, s.points)
    steps = {b: steps_per_repeat(b, s.samples_per_repeat, s.min_steps) for b in sizes}
    runs = {b: (lambda n, b=b: bench.train_steps(resolution, b, n)) for b in sizes}
    report(f"{resolution} px: timing B = {sizes}, {s.repeats} rounds")
    times = median_batch_times(runs, steps, s.repeats, s.warmup, clock,
                               lambda k: report(f"  {resolution} px: round {k}/{s.repeats} done"))
    timings = [BatchTiming(resolution, b, *times[b], steps[b], s.repeats) for b in sizes]
    for t in timings:
        report(f"  {resolution} px B={t.batch_size:5d}: {t.seconds * 1e3:9.3f} ms/batch (min {t.min_s * 1e3:.3f}, "
               f"max {t.max_s * 1e3:.3f}; {s.repeats} x {t.steps} batches)")
    fit = fit_resolution(resolution, timings, batch_large, memory=predictor, memory_points=tuple(points),
                         memory_budget=budget, predicted_max_batch=predicted, probed_max_batch=probed)
    verdict = "fits" if not fit.line_problems else "fits badly: " + "; ".join(fit.line_problems)
    report(f"{resolution} px: t(B) = {fit.a:.6g} * B + {fit.b:.6g} s, R^2 {fit.r2:.4f}, worst residual "
           f"{fit.worst_residual:.1%} -> the line {verdict}")
    return fit


@dataclass
class Result:
    name: str
    kind: str
    reasons: List[str]
    fits: List[ResolutionFit]
    profile_path: Path
    out_dir: Path
    validation: List[dict] = field(default_factory=list)
    validation_skipped: str = ""
    terms_path: Optional[Path] = None  # the forecast terms measured after the profile


def describe(cfg: Config, device: str, threads: int, date: str, cuda: bool = False) -> str:
    v = versions()
    where = ("CUDA" + (", AMP" if cfg.train.amp else "") if cuda
             else f"{threads} torch threads" + (", channels_last" if cfg.train.channels_last else ""))
    return (f"{device} ({where}), ResNet-18 width {cfg.model.width} ({cfg.model.stem} stem), "
            f"{cfg.dataset.name}; torch {v['torch']}, torchvision {v['torchvision']}, dbsl {v['dbsl']}, "
            f"Python {v['python']}; calibrated {date}")


def header(result_fits: Sequence[ResolutionFit], kind: str, reasons: Sequence[str], command: str,
           description: str, out_dir: Path) -> list[str]:
    lines = [f"Calibrated on this machine by: {command}", f"{description}",
             "Per-batch training time t(B) = a*B + b seconds (a: per sample, b: per batch); batch_large = B_L;",
             "batch_sizes/batch_times: the measured medians (made non-decreasing); hardware.kind=table uses them."]
    if kind == "linear":
        lines.append(f"kind=linear: every line fits (worst residual <= {MAX_RESIDUAL:.0%}, a > 0, b >= 0).")
    else:
        lines.append("kind=table: the line fits badly, so the measured table is the model:")
        lines += [f"  {r}" for r in reasons] or ["  (requested with --kind table)"]
    for f in result_fits:
        extra = f", memory predictor B_max={f.predicted_max_batch}" if f.predicted_max_batch is not None else ""
        extra += f", probed B_max={f.probed_max_batch}" if f.probed_max_batch is not None else ""
        lines.append(f"{f.resolution} px: a={f.a:.6g}, b={f.b:.6g}, R^2={f.r2:.4f}, worst residual "
                     f"{f.worst_residual:.1%}, B_L={f.batch_large}{extra}")
    lines.append(f"Measurements, the Table-4 check and the plot: {out_dir}")
    return lines


def run_calibration(cfg: Config, settings: Settings, name: str, bench: Step, dataset_size: int,
                    clock: Clock = time.perf_counter, report: Callable[[str], None] = print,
                    command: str = "python -m dbsl.calibrate", threads: int = 1) -> Result:
    """Measure, fit, write the profile and the tables, then run the Table-4 check against the current plan."""
    check_name(name)
    settings.check()
    fits = [calibrate_resolution(bench, r, settings, clock, report) for r in settings.resolutions]
    kind, reasons = choose_kind(fits, settings.kind)
    if kind == "table" and reasons:
        report("the line fits badly (" + " | ".join(reasons) + "): keeping the measured-table model (kind=table)")
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    description = describe(cfg, bench.device_name(), threads, date, bench.probes_out_of_memory)
    hw = hardware_config(name, description, kind, fits)
    root = Path(cfg.results_dir)
    out_dir = root / "calibration" / name
    comments = header(fits, kind, reasons, command, description, out_dir)
    profile_path = write_profile(layout.conf_dir(root, "hardware") / f"{name}.yaml", hw, comments)
    write_profile(out_dir / "profile.yaml", hw, comments)
    write_csv(out_dir / "batch_times.csv", batch_time_rows(fits))
    write_csv(out_dir / "memory.csv", memory_rows(fits))
    write_csv(out_dir / "fit.csv", fit_rows(fits, kind))
    plot_fit(out_dir / "fit.png", fits, kind, description)
    report(f"wrote {profile_path} (kind={kind}); use it with hardware={name}")
    result = Result(name, kind, reasons, fits, profile_path, out_dir)
    if settings.validate:
        _validate(cfg, hw, settings, bench, dataset_size, clock, report, result)
    return result


def _validate(cfg, hw, settings, bench, dataset_size, clock, report, result: Result) -> None:
    try:
        plan = build_plan(dataclasses.replace(cfg, hardware=hw), dataset_size)
    except ConfigError as err:
        result.validation_skipped = f"no plan with this profile: {err}"
        report(f"Table-4 check skipped: {result.validation_skipped}")
        return
    pairs = plan_mini_epochs(plan)
    if settings.validate_pairs:
        pairs = pairs[:settings.validate_pairs]
    report(f"Table-4 check: {len(pairs)} (B, d) pairs of the {plan.scheme} plan (n={plan.num_workers}, "
           f"n_S={plan.num_small}, d_L={plan.data_large}, d_S={plan.data_small})"
           + (f", at most {settings.validate_steps} batches each" if settings.validate_steps else ""))
    line = profile_from_config(dataclasses.replace(hw, kind="linear")) if hw.kind != "linear" else None
    result.validation = validate_mini_epochs(pairs, profile_from_config(hw), bench.train_steps,
                                             settings.validate_repeats, settings.validate_steps, clock=clock,
                                             report=report, line=line)
    path = write_csv(result.out_dir / "validation.csv", result.validation)
    errors = [abs(r["rel_error"]) for r in result.validation]
    if errors:
        report(f"Table-4 check: worst |error| {max(errors):.1%} over {len(errors)} mini-epochs -> {path}")


def check_clock(clock: str, device: torch.device) -> None:
    if clock == "cpu" and (device.type != "cpu" or torch.get_num_threads() != 1):
        raise ConfigError("--clock cpu: CPU seconds measure a run's time only on the CPU with one thread; "
                          "add train.threads=1 (and device=cpu)")


def calibrate_terms(cfg: Config, result: Result, source, device: torch.device, quick: bool, command: str,
                    say: Callable[[str], None]) -> Path:
    """Measure the forecast terms with the new profile's plan (the config's own where that has none) and write them
    beside the profile, under its name."""
    hw = load_profile(result.profile_path)
    try:
        plan = build_plan(dataclasses.replace(cfg, hardware=hw), len(source.train))
    except ConfigError:
        plan = build_plan(cfg, len(source.train))
    terms = measure_terms(cfg, plan, source, device, Repeats.quick() if quick else Repeats(), say)
    return _write_terms(cfg, terms, result.name, result.out_dir, hw.description, command, say)


def calibrate_terms_only(cfg: Config, device: torch.device, quick: bool = False, clock: str = "wall",
                         command: str = "", say: Callable[[str], None] = print) -> Path:
    """``--terms-only``: the forecast terms of the profile ``cfg`` uses (``hardware=<name>``), which stays as it is,
    with the training step timed again at the plan's batch sizes as the forecast's own ``batch_time_fit``."""
    name = cfg.hardware.name
    out_dir = layout.calibration_dir(cfg.results_dir, name)
    for folder in (out_dir, layout.conf_dir(cfg.results_dir, "forecast")):
        check_output_dir(folder, "results_dir")
    check_clock(clock, device)
    say(f"measuring the forecast terms of hardware={name} on {device} ({torch.get_num_threads()} threads); the "
        "profile itself is left as it is")
    busy = machine_load(device)
    if busy:
        say(f"warning: {busy}")
    source = load_dataset(cfg.dataset, cfg.seed)
    plan = build_plan(cfg, len(source.train))
    repeats = Repeats.quick() if quick else Repeats()
    terms = measure_terms(cfg, plan, source, device, repeats, say)
    timer = time.process_time if clock == "cpu" else time.perf_counter
    fit = refit_training(TrainingStep(cfg, source, device).train_steps, plan, 3 if quick else 5, clock=timer)
    for r, (a, b) in fit.items():
        say(f"forecast terms: training at {r} px t(B) = {a:.6g} * B + {b:.6g} s ({clock} clock; the profile's "
            f"t(B) stays for the plan)")
    terms = dataclasses.replace(terms, batch_time_fit=fit)
    return _write_terms(cfg, terms, name, out_dir, cfg.hardware.description, command, say)


def _write_terms(cfg: Config, terms, name: str, out_dir: Path, description: str, command: str,
                 say: Callable[[str], None]) -> Path:
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    terms = dataclasses.replace(terms, source=f"measured by dbsl calibrate on {date} (executor={cfg.executor.name}, "
                                              f"{description.split(';')[0]})")
    comments = [f"Measured on this machine by: {command}",
                "The forecast's terms besides training (dbsl/calibration/overheads.py says how each is measured);",
                f"dbsl forecast hardware={name} reads this file."]
    write_terms(out_dir / "forecast_terms.yaml", terms, comments)
    path = write_terms(layout.conf_dir(cfg.results_dir, "forecast") / f"{name}.yaml", terms, comments)
    say(f"wrote {path}: the forecast terms of hardware={name}")
    return path


# ------------------------------------------------------------------------------------------------------------ CLI
def machine_load(device) -> str:
    """A warning when other processes already keep the CPU busy (timings would then be inflated and noisy)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    cores = os.cpu_count() or 1
    if device.type == "cpu" and load > 0.5 * cores:
        return (f"the 1-minute load average is {load:.1f} on {cores} cores: other processes compete with the "
                f"{torch.get_num_threads()} timing threads, so the measured times will be high and noisy; "
                "calibrate when the machine is quiet" + (" (or set train.threads=1)" if torch.get_num_threads() > 1
                                                         else ""))
    return ""


def calibrate(cfg: Config, device: torch.device, settings: Settings, name: Optional[str] = None, clock: str = "wall",
              quick: bool = False, command: str = "", say: Callable[[str], None] = print,
              forecast_terms: bool = True) -> Result:
    """Calibrate ``cfg``'s model and data on ``device`` (set up by :func:`dbsl.machine.prepare`): measure, fit, write
    the profile ``<results_dir>/conf/hardware/<name>.yaml`` and its tables, and check it; then (``forecast_terms``)
    measure the forecast's other costs into ``<results_dir>/conf/forecast/<name>.yaml``
    (:mod:`dbsl.calibration.overheads`). ``clock``: ``wall`` (elapsed seconds) or ``cpu`` (this process's CPU
    seconds, one thread on the CPU only)."""
    name = check_name(name or f"{device.type}_w{cfg.model.width}_{cfg.dataset.name}")
    for folder in (layout.conf_dir(cfg.results_dir, "hardware"), layout.calibration_dir(cfg.results_dir, name),
                   layout.conf_dir(cfg.results_dir, "forecast")):
        check_output_dir(folder, "results_dir")
    check_clock(clock, device)
    say(f"calibrating {name} on {device} ({torch.get_num_threads()} threads): resolutions "
        f"{settings.resolutions}, {'quick' if quick else 'full'} mode")
    busy = machine_load(device)
    if busy:
        say(f"warning: {busy}" + (" (CPU seconds are affected less, but not immune)" if clock == "cpu" else ""))
    source = load_dataset(cfg.dataset, cfg.seed)
    bench = TrainingStep(cfg, source, device)
    timer = time.process_time if clock == "cpu" else time.perf_counter
    result = run_calibration(cfg, settings, name, bench, len(source.train), clock=timer, report=say,
                             command=command, threads=torch.get_num_threads())
    if forecast_terms:
        result.terms_path = calibrate_terms(cfg, result, source, device, quick, command, say)
    if Path(cfg.results_dir).resolve() != (Path.cwd() / "results").resolve():
        say(f"note: Hydra looks for profiles in ./results/conf; from elsewhere add "
            f"'hydra.searchpath=[file://{Path(cfg.results_dir).resolve() / 'conf'}]' to find hardware={result.name}")
    return result
