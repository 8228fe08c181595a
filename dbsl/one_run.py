"""One run from a validated config: skip or resume, load data, plan, execute, and keep the record honest."""
from __future__ import annotations

import datetime as dt
import logging
import traceback
from pathlib import Path
from typing import Callable, Sequence

import torch
from omegaconf import OmegaConf

from .config import Config, ConfigError, implementation
from .data import load_dataset
from .errors import Diverged, RecordError
from .identity import identity_difference, run_identity
from .machine import environment, prepare
from .monitor import Monitor, measured_clock_source
from .plan import build_plan
from .ps.context import RunContext
from .record import POSTHOC, START_AGAIN, RunRecord, git_commit, versions

log = logging.getLogger("dbsl")


def executor(name: str) -> Callable:
    """The executor ``executor.name`` names (config.IMPLEMENTATIONS); a torch without torch.distributed.rpc still
    runs the simulated one."""
    try:
        return implementation("executor.name", name)
    except ImportError as err:
        raise ConfigError(f"executor.name={name}: this torch cannot run it ({err}); use executor=simulated") from None


def make_sinks(cfg: Config, summary: dict) -> list:
    if not cfg.logger.wandb:
        return []
    from .sinks.wandb import WandbSink  # wandb takes seconds to import: only for runs that log to it

    return [WandbSink(cfg, summary)]


def stop_logging_into(directory: Path) -> None:
    """A completed record is final: close the log files (Hydra's run.log) that would append to it."""
    inside = directory.resolve()
    for logger in (logging.getLogger(), log):
        for handler in list(logger.handlers):
            if (isinstance(handler, logging.FileHandler)
                    and Path(handler.baseFilename).resolve().is_relative_to(inside)):
                logger.removeHandler(handler)
                handler.close()


def check_belongs(record: RunRecord, checkpoint: dict, identity: dict) -> None:
    """A resume continues only the run the checkpoint was made by: same identity (config and seed), else a
    RecordError naming both (a checkpoint without one predates the check and proves nothing)."""
    stored = checkpoint.get("identity")
    if stored == identity:
        return
    if stored is None:
        raise RecordError(f"{record.checkpoint_path}: carries no run identity (made by an older dbsl), so nothing "
                          f"proves it belongs to this run; {START_AGAIN} (resume=false does too)")
    raise RecordError(f"{record.checkpoint_path}: belongs to another run ({identity_difference(stored, identity)}; "
                      f"checkpoint -> this run's config); resuming would continue that run under this one's name. Run "
                      f"it with its own config, or {START_AGAIN}")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_summary(cfg: Config, plan, overrides: Sequence[str], device: torch.device) -> dict:
    """What a run is: the fields the report groups and labels runs by."""
    return {
        "status": "running", "name": cfg.name, "scheme": cfg.scheme.name, "dual_batch": cfg.scheme.dual_batch,
        "cyclic": cfg.scheme.cyclic, "dataset": cfg.dataset.name, "model_width": cfg.model.width,
        "num_workers": plan.num_workers, "num_small": plan.num_small, "extra_time_ratio": plan.extra_time_ratio,
        "update_factor": cfg.ps.update_factor, "merge_rule": cfg.ps.merge_rule, "sync": cfg.ps.sync,
        "sampling": cfg.train.sampling, "executor": cfg.executor.name, "hardware": plan.hardware, "seed": cfg.seed,
        "overrides": list(overrides), "run_dir": str(cfg.output_dir), "total_commits": plan.total_commits,
        "plan": {"dataset_size": plan.dataset_size, "data_large": plan.data_large, "data_small": plan.data_small,
                 "update_factor_small": plan.update_factor_small,
                 "batch_large": {p.resolution: p.batch_large for p in plan.phases},
                 "batch_small": {p.resolution: p.batch_small for p in plan.phases}},
        "versions": versions(), "environment": environment(device), "git_commit": git_commit(), "started": now(),
    }


def execute(cfg: Config, overrides: Sequence[str] = (), extra_sinks: Sequence = ()) -> dict:
    """Run (or skip, or resume) the run whose record lives in ``cfg.output_dir``; returns its summary.

    ``extra_sinks`` receive every commit's row besides the logger's (e.g. dbsl.tune's pruning sink)."""
    if cfg.executor.name == "distributed":  # under torchrun, ranks 1..n are workers and write no record
        from .ps.distributed import serve_if_worker  # only distributed runs need torch.distributed.rpc

        if (served := serve_if_worker(cfg)) is not None:
            return served
    record = RunRecord(cfg.output_dir)
    previous = None if cfg.overwrite else record.read_summary()  # a damaged summary.json stops here (RecordError)
    if previous and previous.get("status") == "completed":
        stop_logging_into(record.dir)
        log.info("%s: already completed, skipped (overwrite=true runs it again)", record.dir)
        return {**previous, "skipped": True}
    checkpoint = None
    identity = run_identity(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True))
    if previous and cfg.resume:
        checkpoint = record.load_checkpoint()  # a damaged checkpoint stops here (RecordError)
        if checkpoint is not None and checkpoint.get("executor") != cfg.executor.name:
            checkpoint = None  # another executor's state: the run starts again
        if checkpoint is not None:
            check_belongs(record, checkpoint, identity)  # another run's checkpoint stops here (RecordError)
            record.rows_until(checkpoint["commit"])  # ... and so does a metrics.csv with rows missing
    elif cfg.overwrite:  # what the earlier attempt left that this one replaces: its checkpoint and final model
        for path in (record.checkpoint_path, record.final_path, record.dir / POSTHOC):
            path.unlink(missing_ok=True)
    device = prepare(cfg.train.threads, cpu_isa=cfg.train.cpu_isa, device=cfg.device)
    record.stamp = {"identity": identity, "threads": torch.get_num_threads()}
    source = load_dataset(cfg.dataset, cfg.seed)  # a missing or corrupt dataset fails here, before any training
    plan = build_plan(cfg, len(source.train))  # an impossible budget fails here
    record.write_text("config.yaml", OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    record.write_json("plan.json", plan.to_dict())
    summary = run_summary(cfg, plan, overrides, device)
    if checkpoint is not None:
        summary["resumed_from_commit"] = checkpoint["commit"] + 1
        summary["started"] = previous.get("started", summary["started"])
        threads = previous.get("threads_per_attempt") or [checkpoint.get("threads")]
        summary["threads_per_attempt"] = threads + [torch.get_num_threads()]
        if checkpoint.get("threads") != torch.get_num_threads():
            log.warning("%s: resumed with %d torch threads where the checkpoint was made with %s; the run goes on, but "
                        "it is no longer bit-for-bit repeatable (summary.json threads_per_attempt says so)", record.dir,
                        torch.get_num_threads(), checkpoint.get("threads"))
    record.write_summary(summary)
    record.open_metrics(keep_until_commit=checkpoint["commit"] if checkpoint else None)
    sinks = make_sinks(cfg, summary) + list(extra_sinks)
    monitor = Monitor(plan, record, sinks, cfg.logger.progress,
                      start_commit=checkpoint["commit"] + 1 if checkpoint else 0,
                      measured_clock=measured_clock_source(cfg.executor.name, cfg.ps.sync, device))
    ctx = RunContext(cfg, plan, source, device, record, monitor)
    status = "failed"
    try:
        executor(cfg.executor.name)(ctx, checkpoint)
        status = "completed"
    except BaseException as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        if isinstance(err, Diverged):
            status = "diverged"
        elif isinstance(err, KeyboardInterrupt):
            status = "interrupted"
            summary["error"] = "interrupted (Ctrl-C); the same command resumes the run from its last checkpoint"
        elif type(err).__name__ == "TrialPruned":  # optuna's, raised by dbsl.tune's pruning sink (no import here)
            status = "pruned"
            summary["error"] = f"pruned by dbsl.tune: {err}"
        else:
            summary["traceback"] = traceback.format_exc(limit=20)
        raise
    finally:
        monitor.close()
        record.close()
        summary.update(monitor.results(), status=status, finished=now())
        record.write_summary(summary)
        for sink in sinks:
            sink.log_summary(summary)
            sink.finish(status)
    if status == "completed":
        record.checkpoint_path.unlink(missing_ok=True)  # the record holds the results; the run cannot resume further
    log.info("%s %s: best test top-1 %.4f, final %.4f, modelled time %.1f s, wall %.1f s -> %s", cfg.scheme.name,
             f"n_S={plan.num_small}", summary["best"]["test_top1"], summary["final"]["test_top1"],
             summary["modelled_time"], summary["wall_time"], record.dir)
    return summary
