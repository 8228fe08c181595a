"""Weights & Biases sink (``logger=wandb``): the resolved config and plan, every commit's metrics, the summary.

Grouping: group = ``logger.group``, else the sweep's name in a multirun; job_type = the scheme; tags = the run's
overrides plus ``logger.tags``. The W&B files go to ``<run dir>/wandb/``.

What is logged (``define_metric``): every commit's row with ``commit`` as the default x axis (W&B's ``_step`` is the
commit too); ``epoch``, ``modelled_time`` and ``wall_time`` are logged in every row, so any of them can be the x axis;
``test_top1``/``test_top5`` are summarised by their maximum (the best, as the paper's tables) and ``test_loss`` by
its minimum. Per worker, under ``worker/<rank>/``: the pushing worker's own series (``WORKER_SERIES``) and its
cumulative compute seconds; the distributed executor's summary adds each worker's compute, communication,
evaluation and waiting seconds (``worker/<rank>/<kind>_time``), which the simulated executor does not measure.

Mode (``logger.mode``): ``auto`` follows ``$WANDB_MODE`` if set, else runs online when an API key is found
(``$WANDB_API_KEY`` or ~/.netrc) and offline otherwise. Without a key it never goes online, so it never prompts;
a server that does not accept a connection within ``REACH_TIMEOUT`` seconds (no network) means offline, said once;
an online start that still fails falls back to offline after ``INIT_TIMEOUT`` seconds. Offline runs are
uploaded later with ``just sync`` (``dbsl sync``). Any W&B error is logged and W&B is dropped: the run
and its record on disk never depend on it.
"""
from __future__ import annotations

import json
import logging
import netrc
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from ..config import Config
from ..identity import identity_overrides
from ..record import read_metric_rows

log = logging.getLogger("dbsl")

INIT_TIMEOUT = 30.0  # seconds an online start may take before falling back to offline
COPY_PREFIX = "dbsl-"  # record files attached to the W&B run are renamed dbsl-<name>
MAX_TAG = 64  # W&B's tag length limit
STEP_METRIC = "commit"  # the x axis of every series unless a chart picks another
X_AXES = ("epoch", "modelled_time", "wall_time")  # also in every row: alternative x axes
SUMMARIES = {"test_top1": "max", "test_top5": "max", "test_loss": "min"}  # the best over the run, not the last
WORKER_PREFIX = "worker"
WORKER_SERIES = ("train_loss", "train_acc", "batch_size", "lr", "resolution", "samples", "modelled_time")
WORKER_TIMES = ("compute", "communication", "evaluation", "waiting")  # the distributed executor's breakdown


def worker_key(rank, name: str) -> str:
    """The W&B key of a per-worker series: worker/<rank>/<name>."""
    return f"{WORKER_PREFIX}/{rank}/{name}"


def has_api_key() -> bool:
    """A W&B API key in $WANDB_API_KEY or in the netrc file for the W&B host (no prompt, no network)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).netloc
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return bool(host and netrc.netrc(path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


REACH_TIMEOUT = 3.0  # seconds to wait for the W&B server to accept a connection
_reachable: dict = {}  # host -> answer, once per process


def server_host() -> tuple[str, int]:
    """The W&B server's host and port ($WANDB_BASE_URL, else api.wandb.ai over HTTPS)."""
    url = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def server_answers(timeout: float = REACH_TIMEOUT) -> bool:
    """Whether the W&B server accepts a connection within ``timeout`` seconds (asked once per process): with an API
    key but no network, W&B itself waits up to ``INIT_TIMEOUT`` in every run, and ``wandb sync`` hangs."""
    host = server_host()
    if host not in _reachable:
        try:
            socket.create_connection(host, timeout=timeout).close()
            _reachable[host] = True
        except OSError:
            _reachable[host] = False
    return _reachable[host]


def resolve_mode(mode: str) -> str:
    """online | offline | disabled from ``logger.mode`` (see the module docstring); never online without a key."""
    if mode == "auto":
        env = os.environ.get("WANDB_MODE", "").lower()
        mode = {"offline": "offline", "dryrun": "offline", "disabled": "disabled"}.get(env, "online")
        if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
            mode = "disabled"
    if mode == "online" and not has_api_key():
        log.info("W&B: no API key ($WANDB_API_KEY or `wandb login`), logging offline")
        return "offline"
    if mode == "online" and not server_answers():
        if not _reachable.get("said"):
            host, port = server_host()
            log.warning("W&B: %s:%d does not answer within %g s (no network?); logging offline, `just sync` uploads "
                        "later", host, port, REACH_TIMEOUT)
            _reachable["said"] = True
        return "offline"
    return mode


def run_tags(overrides, extra) -> list[str]:
    """The overrides that define the run (not where or how it goes), then ``logger.tags``; W&B's length limit."""
    tags = identity_overrides(overrides) + list(extra)
    return list(dict.fromkeys(t[:MAX_TAG] for t in tags))


def sweep_group(cfg: Config) -> str | None:
    """``logger.group``, else the sweep's name when this run is a job of a Hydra multirun."""
    if cfg.logger.group:
        return cfg.logger.group
    try:
        return cfg.sweep_name if HydraConfig.get().mode == RunMode.MULTIRUN else None
    except ValueError:  # not inside a Hydra app
        return None


class WandbSink:
    def __init__(self, cfg: Config, summary: dict):
        self.run_dir = Path(cfg.output_dir)
        self.mode = resolve_mode(cfg.logger.mode)
        self.run = None
        self.worker_compute: dict[int, float] = {}  # per-worker compute seconds so far
        self.last_compute = 0.0
        if self.mode == "disabled":
            return
        import wandb

        plan_path = self.run_dir / "plan.json"
        config = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
        config["plan"] = json.loads(plan_path.read_text()) if plan_path.exists() else summary.get("plan")
        config["overrides"] = list(summary.get("overrides", []))
        kwargs = dict(project=cfg.logger.project, entity=cfg.logger.entity, dir=str(self.run_dir),
                      name=self.run_dir.name, group=sweep_group(cfg), job_type=cfg.scheme.name,
                      tags=run_tags(summary.get("overrides", []), cfg.logger.tags), config=config,
                      reinit="finish_previous")
        for attempt in (self.mode, "offline"):
            try:
                settings = wandb.Settings(silent=True, init_timeout=INIT_TIMEOUT, console="off",
                                          x_disable_stats=True, save_code=False)
                self.run = wandb.init(mode=attempt, settings=settings, **kwargs)
                self.mode = attempt
                break
            except Exception as err:  # noqa: BLE001 - W&B must never stop a run
                log.warning("W&B: %s start failed (%s: %s)%s", attempt, type(err).__name__, err,
                            "; trying offline" if attempt != "offline" else "; continuing without W&B")
                if attempt == "offline":
                    break
        self._call("define_metric", self._define_metrics)
        self._save("config.yaml", "plan.json")
        metrics = self.run_dir / "metrics.csv"  # a resumed run: the rows its checkpoint kept
        for row in read_metric_rows(metrics) if metrics.exists() else []:
            self._count_compute(int(row["worker"]), float(row["compute_time"]))

    @staticmethod
    def _define_metrics(run) -> None:
        run.define_metric(STEP_METRIC)
        for name in X_AXES:
            run.define_metric(name, step_metric=STEP_METRIC)
        for name, summary in SUMMARIES.items():
            run.define_metric(name, step_metric=STEP_METRIC, summary=summary)
        run.define_metric(f"{WORKER_PREFIX}/*", step_metric=STEP_METRIC)
        run.define_metric("*", step_metric=STEP_METRIC)

    def _count_compute(self, rank: int, total: float) -> float:
        """Add the commit's compute seconds (the row's running total minus the previous one) to its worker's."""
        self.worker_compute[rank] = self.worker_compute.get(rank, 0.0) + total - self.last_compute
        self.last_compute = total
        return self.worker_compute[rank]

    def _call(self, what: str, action) -> None:
        """Run ``action(run)`` unless W&B is off; on error, log it and drop W&B for the rest of the run."""
        if self.run is None:
            return
        try:
            action(self.run)
        except Exception as err:  # noqa: BLE001 - W&B must never stop a run
            log.warning("W&B: %s failed (%s: %s); W&B logging stops, the run record goes on", what,
                        type(err).__name__, err)
            self.run = None

    def _save(self, *names: str) -> None:
        """Copy record files into the W&B run's files folder, which W&B uploads (now, or at `just sync`).

        The copies are renamed (dbsl-summary.json ...): a second summary.json under the run directory would look
        like another run to dbsl.record.find_runs."""
        for name in names:
            if (self.run_dir / name).exists():
                self._call(f"saving {name}",
                           lambda run: shutil.copy2(self.run_dir / name, Path(run.dir) / f"{COPY_PREFIX}{name}"))

    def log_commit(self, row: dict) -> None:
        if self.run is None:
            return
        metrics = {k: v for k, v in row.items() if v is not None}
        if row.get("worker") is not None:
            rank = int(row["worker"])
            metrics.update({worker_key(rank, k): row[k] for k in WORKER_SERIES if row.get(k) is not None})
            metrics[worker_key(rank, "compute_time")] = self._count_compute(rank, float(row["compute_time"]))
        self._call("log", lambda run: run.log(metrics, step=int(row["commit"])))

    def log_summary(self, summary: dict) -> None:
        flat = {"status": summary.get("status"), "modelled_time": summary.get("modelled_time"),
                "wall_time": summary.get("wall_time"), "compute_time": summary.get("compute_time")}
        for which in ("best", "final"):
            for key, value in (summary.get(which) or {}).items():
                flat[f"{which}/{key}"] = value
        for rank, times in (summary.get("workers") or {}).items():  # the distributed executor's breakdown
            flat.update({worker_key(rank, f"{kind}_time"): times.get(kind) for kind in WORKER_TIMES})
        if summary.get("error"):
            flat["error"] = summary["error"]
        self._call("summary", lambda run: run.summary.update({k: v for k, v in flat.items() if v is not None}))
        self._save("summary.json", "metrics.csv")

    def finish(self, status: str) -> None:
        self._call("finish", lambda run: run.finish(exit_code=0 if status == "completed" else 1))
        if self.run is not None and self.mode == "offline":
            log.info("W&B: run saved offline in %s; upload it with `just sync` (dbsl sync %s)",
                     self.run_dir / "wandb", self.run_dir)
        self.run = None
