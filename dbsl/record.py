"""The run record: the only thing the report reads.

One directory per run::

    config.yaml    the resolved config
    plan.json      the plan (phases, batch sizes, data amounts, update factors)
    metrics.csv    one row per commit; the test columns are filled where the merged model was evaluated
    summary.json   status (running / completed / failed / diverged), best and final metrics, times, seed, versions,
                   git commit (always valid JSON: a NaN or infinite number is written as null)
    checkpoint.pt  the latest checkpoint (resume)
    final.pt       the final global model's state_dict, written when the run completes (post-hoc checks:
                   dbsl.posthoc recalibrates BatchNorm and tests on the training images without a rerun)

summary.json and checkpoint.pt are replaced atomically (write a temporary file, fsync, rename), so a killed run never
leaves a file that looks complete; metrics.csv is append-only and cut back to the checkpoint on resume, which
needs every row up to the checkpoint (:meth:`RunRecord.rows_until`). A damaged file is a :class:`RecordError` that
names it and the way out (``overwrite=true``).
"""
from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch

from . import __version__
from .errors import RecordError

METRIC_COLUMNS = (
    "commit", "epoch", "worker", "small", "phase", "lr_stage", "resolution", "dropout", "lr", "batch_size",
    "samples", "train_loss", "train_acc", "test_loss", "test_top1", "test_top5",
    "test_loss_l2",  # test_loss (cross-entropy) plus the models' L2 kernel term: the paper's (Keras's) test loss
    "modelled_time", "wall_time", "seconds", "cpu_seconds", "measured_time",
    "compute_time",  # compute_time last: a torn last line lacks it (read_metric_rows)
)
# diverged: a NaN or infinite loss ended the run; interrupted: Ctrl-C stopped it (the same command resumes it);
# pruned: dbsl.tune stopped it early (its accuracy fell below the median of earlier trials'): not a failure
STATUSES = ("running", "completed", "failed", "diverged", "interrupted", "pruned")
FINAL_MODEL = "final.pt"
POSTHOC = "posthoc.json"  # the post-hoc checks of final.pt (dbsl.posthoc), read by the report
START_AGAIN = "run the same command with overwrite=true to start this run again from commit 0"


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, fsync, rename. The file gets the modes
    ``open()`` would give it (0666 less the umask; mkstemp's are 0600, which a colleague or a web server sharing
    the results cannot read). A full disk or a refused write is a :class:`RecordError` naming the file; the earlier
    file, if any, is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~umask())
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _write_error(path, err) from None
        raise


def _write_error(path: Path, err: OSError) -> RecordError:
    why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           errno.EACCES: "permission denied", errno.EROFS: "the file system is read-only"}.get(err.errno, err.strerror)
    return RecordError(f"{path}: could not be written ({why}); nothing earlier was lost (the previous version, if "
                       "any, is as it was); free space or fix the permissions and run the same command again")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    import torchvision  # here: the report reads records without loading torchvision

    return {"dbsl": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "platform": platform.platform()}


class RunRecord:
    def __init__(self, run_dir: Path | str):
        self.dir = Path(run_dir)
        self.summary_path = self.dir / "summary.json"
        self.metrics_path = self.dir / "metrics.csv"
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.final_path = self.dir / FINAL_MODEL
        self.stamp: dict = {}  # what every checkpoint carries besides the state: the run's identity, its threads
        self._metrics_fh = None
        self._writer = None

    # -- summary -------------------------------------------------------------------------------------------
    def read_summary(self) -> dict | None:
        return read_summary(self.dir)

    def write_summary(self, summary: dict) -> None:
        if summary.get("status") not in STATUSES:
            raise ValueError(f"summary status must be one of {STATUSES}")
        write_atomic(self.summary_path, to_json(summary))

    def write_json(self, name: str, data: Any) -> None:
        write_atomic(self.dir / name, to_json(data))

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.dir / name, text)

    # -- metrics -------------------------------------------------------------------------------------------
    def rows_until(self, commit: int) -> list[dict]:
        """The rows of commits 0..``commit`` (a resume from the checkpoint at ``commit`` keeps them); a
        :class:`RecordError` when any is missing or repeated, since resuming would leave a gap in the record."""
        try:
            rows = [r for r in read_metric_rows(self.metrics_path) if int(r["commit"]) <= commit]
        except FileNotFoundError:
            rows = []
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise RecordError(f"{self.metrics_path}: unreadable ({type(err).__name__}: {err}); {START_AGAIN}") \
                from err
        have = [int(r["commit"]) for r in rows]
        if have != list(range(commit + 1)):
            missing = sorted(set(range(commit + 1)) - set(have))
            problem = f"rows of commits {commit_ranges(missing)} are missing" if missing else \
                "its rows are repeated or out of order"
            raise RecordError(f"{self.metrics_path}: the checkpoint is at commit {commit}, but {problem} (the file was "
                              "cut or edited), so resuming would leave a gap in the record; restore the file, or "
                              f"{START_AGAIN}")
        return rows

    def open_metrics(self, keep_until_commit: int | None = None) -> None:
        """Open metrics.csv for appending; on resume keep only the rows up to ``keep_until_commit`` (all of them)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = [] if keep_until_commit is None else self.rows_until(keep_until_commit)
        write_atomic(self.metrics_path, _csv_text(rows))
        self._metrics_fh = open(self.metrics_path, "a", newline="")
        self._writer = csv.DictWriter(self._metrics_fh, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                                      lineterminator="\n")

    def append_metrics(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._writer.writerow({k: _cell(row.get(k)) for k in METRIC_COLUMNS})
        self._metrics_fh.flush()

    def close(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.flush()
            os.fsync(self._metrics_fh.fileno())
            self._metrics_fh.close()
            self._metrics_fh = None

    # -- checkpoint ----------------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        buf = io.BytesIO()
        torch.save({**state, **self.stamp}, buf)
        write_atomic(self.checkpoint_path, buf.getvalue())

    def save_final(self, state: dict) -> None:
        """The final global model (its state_dict on the CPU), atomically; written once the last commit is merged."""
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, buf)
        write_atomic(self.final_path, buf.getvalue())

    def load_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.exists():
            return None
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - unpickling a damaged file raises many types
            raise RecordError(f"{self.checkpoint_path}: damaged, cannot resume from it ({type(err).__name__}: "
                              f"{_first_line(err)}); {START_AGAIN} (resume=false does too)") from err
        if not isinstance(state, dict) or not isinstance(state.get("commit"), int):
            raise RecordError(f"{self.checkpoint_path}: not a dbsl checkpoint (no commit); {START_AGAIN}")
        return state


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def finite_json(obj):
    """``obj`` with NaN and infinite numbers as None, tensors and numpy scalars as numbers, paths as text."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(data: Any) -> str:
    """Strict JSON (no bare NaN, which JSON does not have): non-finite numbers become null."""
    return json.dumps(finite_json(data), indent=2, allow_nan=False) + "\n"


def commit_ranges(commits: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, start = [], None
    for i, c in enumerate(commits):
        start = c if start is None else start
        if i + 1 == len(commits) or commits[i + 1] != c + 1:
            parts.append(str(c) if c == start else f"{start}-{c}")
            start = None
    return ", ".join(parts)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


def read_metric_rows(path: Path | str) -> list[dict]:
    """Rows of a metrics.csv; a torn last line (a killed run) is dropped."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if (r.get("commit") or "").isdigit() and r.get("compute_time") is not None]


def read_summary(run_dir: Path | str) -> dict | None:
    """The run's summary.json (None when there is none); a :class:`RecordError` when it is damaged."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        with open(path) as fh:
            summary = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordError(f"{path}: damaged, not valid JSON ({type(err).__name__}: {_first_line(err)}); "
                          f"{START_AGAIN}") from err
    if not isinstance(summary, dict) or summary.get("status") not in STATUSES:
        raise RecordError(f"{path}: not a run summary (no status among {', '.join(STATUSES)}); {START_AGAIN}")
    return summary


def find_runs(root: Path | str) -> list[Path]:
    """Every run directory (one holding a summary.json) under ``root``."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("summary.json"))
