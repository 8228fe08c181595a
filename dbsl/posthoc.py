"""Post-hoc checks of a completed run's final model (``final.pt``), with no rerun.

For each run folder: the final global model is tested on the full test set as recorded (BatchNorm with the merged
running statistics), then again after its BatchNorm statistics are recomputed on the run's own training images
(no augmentation, the last phase's resolution, batches of its B_L, the statistics a cumulative average over one
pass, dropout off), and on the training images themselves (eval mode, no augmentation): the generalisation gap
measured on the model rather than on metrics.csv's running train loss, which has augmentation and dropout on.
The results are written to ``posthoc.json`` in the run folder (atomically); the report reads them.

    dbsl posthoc results/sweeps/robustness            # every completed run below the folder (or python -m dbsl.posthoc)
    dbsl posthoc RUN_DIR [RUN_DIR ...] [--force]       # --force measures again
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .config import config_from_yaml
from .data import Pipeline, load_dataset
from .errors import RecordError, UserError
from .local_training import EvalStats, evaluate, kernel_l2_penalty
from .models import build_model
from .plan import build_plan
from .record import FINAL_MODEL, POSTHOC, find_runs, read_summary, to_json, write_atomic

log = logging.getLogger("dbsl")


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> int:
    """Recompute every BatchNorm layer's running mean and variance as the cumulative average over ``batches``
    (PyTorch's momentum=None), dropout and everything else in eval mode; returns the number of images seen."""
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    try:
        for x, _ in batches:
            model(x)
            seen += x.shape[0]
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        model.eval()
    return seen


def _stats(stats: EvalStats, l2: float) -> dict:
    return {"top1": stats.top1, "top5": stats.top5, "loss": stats.loss, "loss_l2": stats.loss + l2,
            "samples": stats.samples}


def measure(run_dir: Path | str) -> dict:
    """The post-hoc measurements of one completed run (see the module's docstring)."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if summary is None or summary.get("status") != "completed":
        raise RecordError(f"{run_dir}: not a completed run (status {summary and summary.get('status')}); post-hoc "
                          "checks need its final model")
    final = run_dir / FINAL_MODEL
    if not final.exists():
        raise RecordError(f"{final}: missing (runs recorded before final models were kept have none); rerun the "
                          "run with overwrite=true to get one")
    cfg = config_from_yaml(run_dir / "config.yaml")
    source = load_dataset(cfg.dataset, cfg.seed)
    plan = build_plan(cfg, len(source.train))
    phase = plan.phases[-1]
    device = torch.device("cpu")
    model = build_model(cfg.model, source.num_classes, source.channels)
    try:
        model.load_state_dict(torch.load(final, map_location="cpu", weights_only=True))
    except Exception as err:  # noqa: BLE001 - a damaged file raises many types
        raise RecordError(f"{final}: damaged ({type(err).__name__}); rerun the run with overwrite=true") from err
    model.set_dropout(phase.dropout)
    plain = Pipeline(source, "none", device)
    l2 = kernel_l2_penalty(model, cfg.optim.kernel_l2)
    batch, every = cfg.train.eval_batch_size, torch.arange(len(source.train))

    def train_images(size: int):
        return plain.train_batches(every, size, phase.resolution, torch.Generator().manual_seed(0), partial_last=True)

    recorded = evaluate(model, plain.test_batches(phase.resolution, batch), device, channels_last=False)
    train = evaluate(model, train_images(batch), device, channels_last=False)
    seen = recalibrate_batchnorm(model, train_images(phase.batch_large))
    recal = evaluate(model, plain.test_batches(phase.resolution, batch), device, channels_last=False)
    return {
        "run_dir": str(run_dir), "resolution": phase.resolution, "train_images": len(source.train),
        "test": _stats(recorded, l2), "train": _stats(train, l2),
        "gap": {"top1_pp": (train.top1 - recorded.top1) * 100.0, "loss": recorded.loss - train.loss},
        "bn_recalibrated": {**_stats(recal, l2), "images": seen, "batch_size": phase.batch_large},
        "bn_change_pp": (recal.top1 - recorded.top1) * 100.0,
    }


def run_folders(paths: Sequence[str]) -> list[Path]:
    """The completed runs named by ``paths`` (run folders, or folders holding runs)."""
    found = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"{p}: no such folder; pass run folders or a folder holding them (e.g. results/sweeps/X)")
        runs = [r for r in find_runs(p) if (read_summary(r) or {}).get("status") == "completed"]
        if not runs:
            raise UserError(f"{p}: holds no completed run")
        found += runs
    return list(dict.fromkeys(found))


def check_runs(paths: Sequence[str], force: bool = False) -> list[Path]:
    """Measure every completed run named by ``paths`` (:func:`run_folders`) and write its ``posthoc.json``; a run
    that has one is kept unless ``force``. The runs, measured or kept."""
    runs = run_folders(paths)
    for i, run in enumerate(runs, 1):
        out = run / POSTHOC
        if out.exists() and not force:
            log.info("[%d/%d] %s: %s exists, kept (--force measures again)", i, len(runs), run, POSTHOC)
            continue
        result = measure(run)
        write_atomic(out, to_json(result))
        log.info("[%d/%d] %s: test top-1 %.2f %%, BN recalibrated %.2f %% (%+.2f pp), train %.2f %% (gap %.2f pp)",
                 i, len(runs), run, result["test"]["top1"] * 100, result["bn_recalibrated"]["top1"] * 100,
                 result["bn_change_pp"], result["train"]["top1"] * 100, result["gap"]["top1_pp"])
    return runs


if __name__ == "__main__":  # python -m dbsl.posthoc: the command is dbsl.cli.posthoc
    from .cli.posthoc import main

    raise SystemExit(main())
