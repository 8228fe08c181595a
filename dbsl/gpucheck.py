"""``dbsl gpu-check`` (also ``python -m dbsl.gpucheck``, ``just gpu-check``): check dbsl's CUDA paths on this
machine in a few minutes.

Without CUDA it prints ``skipped: no CUDA`` and exits 0. With CUDA it runs these checks, each reported on its own:

- ``environment``: torch, CUDA and cuDNN versions, the GPUs, the TF32 switches;
- ``amp_dtypes``: one training step and one test of each paper preset's model: the convolutions run in float16
  exactly where the preset turns AMP on (``paper_imagenet``; the CIFAR presets are fp32), the logits reach the
  cross-entropy in float32 and the loss is float32, the weights stay float32, GradScaler exists only with AMP;
  ``train.channels_last=true`` gives channels_last weights (what ``false`` gives is recorded);
- ``evaluation``: a briefly trained model tested on the GPU with AMP and in float32 against a float32 test on the CPU;
- ``simulated``: short runs of the simulated executor (CPL and small batches) with AMP and channels_last on and off;
- ``distributed_one_gpu``: the distributed executor with two workers on one GPU, AMP and channels_last on and off;
- ``distributed_per_gpu``: with two or more GPUs, one worker per GPU;
- ``resume_simulated`` / ``resume_distributed``: a run stopped after a checkpoint (a simulated run interrupted, a
  distributed worker killed) resumes on the GPU and completes.

Results go to ``<out>/gpu_check.json`` and ``<out>/gpu_check.md`` (default ``results/gpu_check``), small enough to
attach to a bug report; the exit status is 1 if any check failed. ``--only NAME,...`` runs some checks;
``--cpu`` runs them on the CPU instead (to test the check itself: AMP does not apply there).
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import math
import os
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from . import __version__
from .compose import compose_config
from .data import Pipeline, load_dataset
from .errors import UserError
from .local_training import LocalTrainer, evaluate
from .models import build_model
from .one_run import execute
from .ps.supervisor import WorkerFailure
from .ps.remote_worker import FAULT_ENV
from .record import read_metric_rows, write_atomic

PAPER_PRESETS = ("paper_cifar100", "compsac_cifar100", "paper_imagenet")
# a hybrid run (CPL 8 -> 16 px and an LR step) on 2 workers, worker 1 at the small batch: 8 commits, tests at 1,3,5,7
SMOKE = ["experiment=smoke", "scheme=hybrid", "ps.num_workers=2", "dbsl.num_small=1", "dataset.synthetic_train=512",
         "dataset.synthetic_test=256", "schedule.epochs=4", "optim.lr_milestones=[2]", "schedule.cycle_ends=[1,2,3,4]",
         "train.eval_every=2", "logger.progress=false", "executor.timeout=120"]
COMMITS = 8
AMP_LOSS_RTOL, AMP_TOP1_ATOL = 0.02, 0.02  # an AMP test against a float32 one (top-1 as a fraction)
FP32_LOSS_RTOL, FP32_TOP1_ATOL = 0.005, 0.01  # a float32 test on the GPU (TF32 convolutions) against the CPU's
RESUME_RTOL = 0.01  # a resumed run's test losses against an uninterrupted run's (cuDNN is not bit-reproducible)

log = logging.getLogger("dbsl")


class CheckFailed(AssertionError):
    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class Skip(Exception):
    """A check that does not apply on this machine (e.g. one worker per GPU with a single GPU)."""


def expect(condition: bool, message: str, **details) -> None:
    if not condition:
        raise CheckFailed(message, **details)


class Interrupted(RuntimeError):
    """Raised by :class:`StopAfter` to stop a run as a crash would."""


class StopAfter:
    """A sink that stops the run (raises) once commit ``commit`` is recorded: a crash after a checkpoint."""

    def __init__(self, commit: int):
        self.commit = commit

    def log_commit(self, row: dict) -> None:
        if row["commit"] >= self.commit:
            raise Interrupted(f"stopped by the GPU check after commit {row['commit']}")

    def log_summary(self, summary: dict) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


# -- the checks --------------------------------------------------------------------------------------------------
class Checks:
    def __init__(self, device: torch.device, runs: Path):
        self.device, self.runs = device, runs
        self.gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        self.device_override = f"device={device}"  # cuda:0, or cpu

    def all(self) -> Dict[str, Callable[[], dict]]:
        return {"environment": self.environment, "amp_dtypes": self.amp_dtypes, "evaluation": self.evaluation,
                "simulated": self.simulated, "distributed_one_gpu": self.distributed_one_gpu,
                "distributed_per_gpu": self.distributed_per_gpu, "resume_simulated": self.resume_simulated,
                "resume_distributed": self.resume_distributed}

    # environment ---------------------------------------------------------------------------------------------
    def environment(self) -> dict:
        info = {"dbsl": __version__, "torch": torch.__version__, "cuda": torch.version.cuda,
                "device": str(self.device), "gpus": []}
        if self.device.type == "cuda":
            info["cudnn"] = torch.backends.cudnn.version()
            with contextlib.suppress(Exception):  # informative only (newer torch deprecates these switches)
                info["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32,
                                "cudnn": torch.backends.cudnn.allow_tf32}
            for i in range(self.gpus):
                p = torch.cuda.get_device_properties(i)
                info["gpus"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                                     "memory_gib": round(p.total_memory / 2**30, 1)})
        return info

    # AMP and memory format -----------------------------------------------------------------------------------
    def amp_dtypes(self) -> dict:
        out = {}
        for preset in PAPER_PRESETS:
            cfg = compose_config([f"experiment={preset}"])
            half = cfg.train.amp and self.device.type == "cuda"  # autocast is CUDA-only in dbsl
            resolution = min(cfg.schedule.resolutions)
            torch.manual_seed(0)
            model = build_model(cfg.model, 10, 3).to(self.device)
            trainer = LocalTrainer(model, cfg.optim, self.device, cfg.train.amp, cfg.train.channels_last)
            x = torch.randn(4, 3, resolution, resolution, device=self.device)
            y = torch.randint(0, 10, (4,), device=self.device)
            with watch(model) as train_seen:
                stats = trainer.train([(x, y)], cfg.optim.lr)
            with watch(model) as test_seen:
                test = evaluate(model, [(x, y)], self.device, cfg.train.amp)
            row = {"train.amp": cfg.train.amp, "resolution": resolution, "train": train_seen, "test": test_seen,
                   "grad_scaler": trainer.scaler is not None, "train_loss": stats.loss, "test_loss": test.loss,
                   "weights": sorted({str(p.dtype) for p in model.parameters()})}
            out[preset] = row
            conv = "torch.float16" if half else "torch.float32"
            for phase, seen in (("train", train_seen), ("test", test_seen)):
                expect(seen["conv"] == [conv], f"{preset}: {phase} convolutions ran in {seen['conv']}, expected "
                       f"{conv} (train.amp={cfg.train.amp})", **row)
                expect(seen["logits"] == ["torch.float32"] and seen["loss"] == ["torch.float32"],
                       f"{preset}: {phase} logits/loss reached the cross-entropy as {seen['logits']}/{seen['loss']}, "
                       "expected float32", **row)
            expect(row["weights"] == ["torch.float32"], f"{preset}: weights became {row['weights']}", **row)
            expect(row["grad_scaler"] == half, f"{preset}: GradScaler {'missing' if half else 'present'}", **row)
            expect(math.isfinite(stats.loss) and math.isfinite(test.loss), f"{preset}: a non-finite loss", **row)
        formats = {}
        cfg = compose_config(SMOKE)
        for channels_last in (True, False):
            model = build_model(cfg.model, 4, 3).to(self.device)
            trainer = LocalTrainer(model, cfg.optim, self.device, cfg.train.amp, channels_last)
            x, y = torch.randn(8, 3, 16, 16, device=self.device), torch.randint(0, 4, (8,), device=self.device)
            stats = trainer.train([(x, y)], 0.1)
            stem = model.stem[0].weight  # (width, 3, 3, 3): its two layouts differ
            formats[f"channels_last={channels_last}"] = {
                "weights_channels_last": stem.is_contiguous(memory_format=torch.channels_last),
                "train_loss": stats.loss}
            expect(math.isfinite(stats.loss), f"a non-finite loss with channels_last={channels_last}", **formats)
        expect(formats["channels_last=True"]["weights_channels_last"],
               "train.channels_last=true left the weights in the default layout", **formats)
        out["memory_format"] = formats
        return out

    # evaluation against float32 --------------------------------------------------------------------------------
    def evaluation(self) -> dict:
        cfg = compose_config(SMOKE + ["model.width=8", "dataset.synthetic_test=512"])
        source = load_dataset(cfg.dataset, cfg.seed)
        torch.manual_seed(0)
        model = build_model(cfg.model, source.num_classes, source.channels).to(self.device)
        pipeline = Pipeline(source, cfg.dataset.augment, self.device)
        trainer = LocalTrainer(model, cfg.optim, self.device, amp=True)
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(source.train), generator=generator)
        trainer.train(pipeline.train_batches(order[:64 * 32], 32, 16, generator), 0.02)  # not its random init
        amp = evaluate(model, pipeline.test_batches(16, 256), self.device, amp=True)
        fp32 = evaluate(model, pipeline.test_batches(16, 256), self.device, amp=False)
        cpu = torch.device("cpu")
        reference = evaluate(copy.deepcopy(model).to(cpu), Pipeline(source, "none", cpu).test_batches(16, 256), cpu)
        out = {name: {"loss": s.loss, "top1": s.top1, "samples": s.samples}
               for name, s in (("amp", amp), ("float32", fp32), ("cpu_float32", reference))}
        out["tolerances"] = {"amp_loss_rtol": AMP_LOSS_RTOL, "amp_top1_atol": AMP_TOP1_ATOL,
                             "float32_loss_rtol": FP32_LOSS_RTOL, "float32_top1_atol": FP32_TOP1_ATOL}
        for name, stats, rtol, atol in (("AMP", amp, AMP_LOSS_RTOL, AMP_TOP1_ATOL),
                                        ("float32", fp32, FP32_LOSS_RTOL, FP32_TOP1_ATOL)):
            expect(stats.samples == reference.samples, f"the {name} test saw {stats.samples} samples", **out)
            expect(abs(stats.loss - reference.loss) <= rtol * max(1.0, reference.loss),
                   f"the {name} test loss {stats.loss:.5f} differs from the CPU's float32 {reference.loss:.5f}", **out)
            expect(abs(stats.top1 - reference.top1) <= atol,
                   f"the {name} top-1 {stats.top1:.4f} differs from the CPU's float32 {reference.top1:.4f}", **out)
        return out

    # executors -------------------------------------------------------------------------------------------------
    def run(self, name: str, *overrides: str, sinks=(), resume: bool = False) -> dict:
        """One smoke run on this device; a fresh one (overwrite=true) unless ``resume``."""
        device = [] if any(o.startswith("device=") for o in overrides) else [self.device_override]
        fresh = [] if resume else ["overwrite=true"]
        overrides = (*device, *overrides, *fresh)
        cfg = compose_config(SMOKE + [f"output_dir='{self.runs / name}'", *overrides])
        return execute(cfg, list(overrides), extra_sinks=sinks)

    def completed(self, name: str, summary: dict) -> dict:
        rows = read_metric_rows(self.runs / name / "metrics.csv")
        result = {"status": summary.get("status"), "commits": len(rows), "final": summary.get("final"),
                  "wall_time": summary.get("wall_time"), "resumed_from_commit": summary.get("resumed_from_commit")}
        expect(summary.get("status") == "completed", f"{name}: the run ended {summary.get('status')}", **result)
        expect([int(r["commit"]) for r in rows] == list(range(COMMITS)), f"{name}: commits are not 0..{COMMITS - 1}",
               **result)
        losses = [float(r["train_loss"]) for r in rows] + [float(r["test_loss"]) for r in rows if r["test_loss"]]
        expect(all(math.isfinite(v) for v in losses), f"{name}: a non-finite loss in metrics.csv", **result)
        expect([int(r["commit"]) for r in rows if r["test_top1"]] == [1, 3, 5, 7], f"{name}: tests missing", **result)
        return result

    def executor_grid(self, prefix: str, *overrides: str, grid=((True, True), (True, False), (False, True),
                                                                 (False, False))) -> dict:
        out = {}
        for amp, channels_last in grid:
            name = f"{prefix}_amp_{'on' if amp else 'off'}_channels_last_{'on' if channels_last else 'off'}"
            summary = self.run(name, *overrides, f"train.amp={amp}", f"train.channels_last={channels_last}")
            out[name] = self.completed(name, summary)
        return out

    def simulated(self) -> dict:
        return self.executor_grid("simulated")

    def distributed_one_gpu(self) -> dict:
        # every worker on the one device (device=cuda:0)
        return self.executor_grid("distributed_one", "executor=distributed", grid=((True, True), (False, False)))

    def distributed_per_gpu(self) -> dict:
        if self.gpus < 2:
            raise Skip(f"needs 2 or more GPUs (found {self.gpus})")
        n = self.gpus  # device=auto: worker r uses cuda:(r - 1); CPL without small batches: any n fits the data
        name = f"distributed_per_gpu_{n}_workers"
        summary = self.run(name, "executor=distributed", "device=auto", f"ps.num_workers={n}", "scheme=cpl",
                           f"dataset.synthetic_train={256 * n}")
        rows = read_metric_rows(self.runs / name / "metrics.csv")
        result = {"workers": n, "status": summary.get("status"), "commits": len(rows),
                  "workers_seen": sorted({int(r["worker"]) for r in rows}), "final": summary.get("final")}
        expect(summary.get("status") == "completed", f"{name}: the run ended {summary.get('status')}", **result)
        expect(len(rows) == 4 * n, f"{name}: {len(rows)} commits, expected {4 * n}", **result)  # 4 epochs x n
        expect(result["workers_seen"] == list(range(1, n + 1)), f"{name}: not every worker pushed", **result)
        return result

    # checkpoints and resume --------------------------------------------------------------------------------------
    def resume_simulated(self) -> dict:
        every = ["checkpoint_every=2"]
        try:
            self.run("resume_simulated", *every, sinks=[StopAfter(5)])
            raise CheckFailed("the interrupted run did not stop")
        except Interrupted:
            pass
        checkpoint = (self.runs / "resume_simulated" / "checkpoint.pt").exists()
        expect(checkpoint, "no checkpoint.pt after the interruption")
        resumed = self.completed("resume_simulated", self.run("resume_simulated", *every, resume=True))
        reference = self.completed("reference_simulated", self.run("reference_simulated", *every))
        return self._compare(resumed, reference)

    def resume_distributed(self) -> dict:
        every = ["executor=distributed", "checkpoint_every=2"]
        before = os.environ.get(FAULT_ENV)
        os.environ[FAULT_ENV] = "2:3"  # worker 2 is killed after its 3rd push
        try:
            self.run("resume_distributed", *every)
            raise CheckFailed("the run with a killed worker did not fail")
        except WorkerFailure:
            pass
        finally:
            if before is None:
                os.environ.pop(FAULT_ENV, None)
            else:
                os.environ[FAULT_ENV] = before
        expect((self.runs / "resume_distributed" / "checkpoint.pt").exists(), "no checkpoint.pt after the failure")
        resumed = self.completed("resume_distributed", self.run("resume_distributed", *every, resume=True))
        expect((resumed["resumed_from_commit"] or 0) > 0, "the run did not resume from its checkpoint", **resumed)
        return {"resumed": resumed}

    def _compare(self, resumed: dict, reference: dict) -> dict:
        out = {"resumed": resumed, "reference": reference}
        expect((resumed["resumed_from_commit"] or 0) > 0, "the run did not resume from its checkpoint", **out)
        a, b = resumed["final"]["test_loss"], reference["final"]["test_loss"]
        out["final_test_loss_rel_difference"] = abs(a - b) / max(abs(b), 1e-12)
        expect(out["final_test_loss_rel_difference"] <= RESUME_RTOL,
               f"the resumed run's final test loss {a:.5f} differs from an uninterrupted run's {b:.5f}", **out)
        return out


@contextlib.contextmanager
def watch(model: torch.nn.Module):
    """Record the dtype of the first convolution's output, and of the logits and loss at the cross-entropy."""
    seen = {"conv": [], "logits": [], "loss": []}
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    handle = first_conv.register_forward_hook(lambda module, args, output: seen["conv"].append(str(output.dtype)))
    original = F.cross_entropy

    def cross_entropy(logits, target, *args, **kwargs):  # dbsl.local_training calls F.cross_entropy at call time
        loss = original(logits, target, *args, **kwargs)
        seen["logits"].append(str(logits.dtype))
        seen["loss"].append(str(loss.dtype))
        return loss

    F.cross_entropy = cross_entropy
    try:
        yield seen
    finally:
        F.cross_entropy = original
        handle.remove()
        for key in seen:
            seen[key] = sorted(set(seen[key]))


# -- running and reporting ------------------------------------------------------------------------------------------
def run_checks(checks: Checks, names: List[str]) -> List[dict]:
    results = []
    for name in names:
        print(f"gpu-check: {name} ...", flush=True)
        start = time.perf_counter()
        result = {"name": name, "status": "passed", "details": {}, "error": None}
        try:
            result["details"] = checks.all()[name]()
        except Skip as skip:
            result.update(status="skipped", error=str(skip))
        except CheckFailed as err:
            result.update(status="failed", error=str(err), details=err.details)
        except Exception as err:  # noqa: BLE001 - a crash of one check is that check's failure
            result.update(status="failed", error=f"{type(err).__name__}: {err}",
                          details={"traceback": traceback.format_exc(limit=12)})
        result["seconds"] = round(time.perf_counter() - start, 2)
        print(f"gpu-check: {name}: {result['status']}" + (f" ({result['error']})" if result["error"] else ""),
              flush=True)
        results.append(result)
    return results


def markdown(report: dict) -> str:
    env = next((c["details"] for c in report["checks"] if c["name"] == "environment"), {})
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB, sm {g['capability']})" for g in env.get("gpus", []))
    lines = [f"# dbsl GPU check: {'passed' if report['passed'] else 'FAILED'}", "",
             f"{report['created']}, dbsl {report['dbsl']}, torch {report['torch']}, CUDA {report['cuda']}, "
             f"device {report['device']}" + (f"; GPUs: {gpus}" if gpus else ""), "",
             "| check | status | seconds | note |", "|---|---|---|---|"]
    for c in report["checks"]:
        note = (c["error"] or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c['name']} | {c['status']} | {c['seconds']} | {note} |")
    lines.append("")
    for c in report["checks"]:
        lines += [f"## {c['name']}", "", "```json", json.dumps(c["details"], indent=2, default=str), "```", ""]
    return "\n".join(lines)


def write_report(out: Path, results: List[dict], device: torch.device) -> dict:
    report = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "dbsl": __version__,
              "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
              "passed": all(r["status"] != "failed" for r in results), "checks": results}
    write_atomic(out / "gpu_check.json", json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(out / "gpu_check.md", markdown(report))
    return report


def gpu_check(out: Path | str = "results/gpu_check", only: str = "", keep_runs: bool = False,
              cpu: bool = False) -> int:
    """Run the checks (``only``: comma-separated names; default all) on the first GPU (or on the CPU: ``cpu``) and
    write the report into ``out``; the exit status (0 also without CUDA: skipped)."""
    names = list(Checks(torch.device("cpu"), Path()).all())
    only = [n for n in only.split(",") if n]
    if unknown := [n for n in only if n not in names]:
        raise UserError(f"--only {','.join(unknown)}: no such check; the checks are {', '.join(names)}")
    if not cpu and not torch.cuda.is_available():
        print("skipped: no CUDA")
        print(f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}, sees no GPU)")
        return 0
    device = torch.device("cpu" if cpu else "cuda:0")
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s][%(name)s] %(message)s")
    warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath.*is not available")  # as dbsl.run
    out = Path(out)
    with contextlib.ExitStack() as stack:
        if keep_runs:
            runs = out / "runs"
        else:
            runs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbsl-gpu-check-")))
        results = run_checks(Checks(device, runs), only or names)
    report = write_report(out, results, device)
    counts = {s: sum(r["status"] == s for r in results) for s in ("passed", "failed", "skipped")}
    print(f"gpu-check: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped -> "
          f"{out / 'gpu_check.md'} and {out / 'gpu_check.json'}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":  # python -m dbsl.gpucheck: the command is dbsl.cli.gpucheck
    from .cli.gpucheck import main

    raise SystemExit(main())
