"""Tune the small-batch ratio with Optuna: ``dbsl tune [options] <overrides>`` (:mod:`dbsl.cli.tune`, also
``python -m dbsl.tune``).

Searches n_S (``num_small``) with either k (``extra_time_ratio``) or B_S/B_L directly (``batch_ratio``, mapped to
the k that gives it at the schedule's highest resolution, Eq. 8 inverted) for the config the overrides compose,
e.g. ``dbsl tune --trials 20 --budget-ratio 1.1 experiment=cpu_fashion_mnist scheme=hybrid``.

* ``--objective accuracy``: maximise the best test top-1 subject to the modelled time staying within the budget
  (``--budget`` seconds or ``--budget-ratio`` times the n_S=0 plan's). A median pruner stops runs whose test
  accuracy at an evaluation falls below the median of earlier trials'; plans over budget are pruned before training.
* ``--objective pareto``: two objectives, (best test top-1, modelled time), giving the Pareto front (no pruning).

Each trial is an ordinary run with an ordinary record in ``<results_dir>/tune/<study>/runs/<its overrides>``, so
repeated parameters reuse the finished run and the report sees every trial. The study lives in
``<results_dir>/tune/<study>/journal.log`` (Optuna JournalStorage): running the same command again continues it up
to ``--trials`` finished trials, and a trial cut off mid-run is retried first (its run resumes from its checkpoint).
One tune process per study at a time. Written next to the journal: trials.csv, best.json and the plots
history.png, importances.png, and pareto.png (two objectives) or intermediate.png (one).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from .compose import compose_config
from . import layout
from .identity import identity_overrides, run_dirname
from .config import Config, ConfigError
from .errors import Diverged, RunFailure
from .forecast import training_time
from .paths import check_output_dir
from .plan import batch_ratio_to_k, build_plan, dataset_size
from .record import read_summary, write_atomic
from .one_run import execute
from .sinks.pruning import PruningSink

log = logging.getLogger("dbsl")

PARAMS = ("num_small", "extra_time_ratio", "batch_ratio")
BUDGET_CONSTRAINT = "time_over_budget"  # modelled seconds over the budget (<= 0: feasible)
PLAN_TOLERANCE = 0.01  # a plan is pruned before training only when its estimate exceeds the budget by more than 1 %
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class TuneSpec:
    """What a study searches; stored in the study and checked when it is continued."""

    overrides: List[str]
    params: List[str]
    objective: str = "accuracy"  # accuracy (one objective, budget as a constraint) | pareto (accuracy, time)
    num_small: Tuple[int, int] = (0, 4)
    extra_time_ratio: Tuple[float, float, float] = (1.01, 1.2, 0.01)
    batch_ratio: Tuple[float, float, float] = (0.05, 0.95, 0.05)
    budget: Optional[float] = None  # seconds of modelled time
    budget_ratio: Optional[float] = None  # times the n_S=0 plan's modelled time

    def identity(self) -> dict:
        """What must stay the same when a study is continued (not where or how fast its runs go)."""
        data = json.loads(json.dumps(asdict(self)))
        data["overrides"] = sorted(identity_overrides(self.overrides))
        return data


# ---------------------------------------------------------------------------------------------------- the search
def suggest(trial: optuna.Trial, spec: TuneSpec, base: Config) -> List[str]:
    """The trial's overrides. k (or B_S/B_L) is only searched when n_S > 0: with n_S = 0 it has no effect."""
    overrides = []
    num_small = base.dbsl.num_small
    if "num_small" in spec.params:
        num_small = trial.suggest_int("num_small", *spec.num_small)
        overrides.append(f"dbsl.num_small={num_small}")
    if num_small == 0:
        return overrides
    if "extra_time_ratio" in spec.params:
        low, high, step = spec.extra_time_ratio
        k = round(trial.suggest_float("extra_time_ratio", low, high, step=step), 6)
    elif "batch_ratio" in spec.params:
        low, high, step = spec.batch_ratio
        ratio = round(trial.suggest_float("batch_ratio", low, high, step=step), 6)
        k = batch_ratio_to_k(base, ratio, num_small)
    else:
        return overrides
    trial.set_user_attr("extra_time_ratio", k)
    return overrides + [f"dbsl.extra_time_ratio={k!r}"]


def fastest_plan(spec: TuneSpec, base: Config) -> tuple[Optional[float], List[str]]:
    """The smallest planned time over the corners of the search space, and the overrides that give it."""
    sizes = range(spec.num_small[0], spec.num_small[1] + 1) if "num_small" in spec.params else [base.dbsl.num_small]
    best: tuple[Optional[float], List[str]] = (None, [])
    for num_small in sizes:
        if num_small == 0 or not {"extra_time_ratio", "batch_ratio"} & set(spec.params):
            ks = [base.dbsl.extra_time_ratio]
        elif "extra_time_ratio" in spec.params:
            ks = list(spec.extra_time_ratio[:2])
        else:
            ks = [batch_ratio_to_k(base, ratio, num_small) for ratio in spec.batch_ratio[:2]]
        for k in ks:
            cfg = dataclasses.replace(base, dbsl=dataclasses.replace(base.dbsl, num_small=num_small,
                                                                     extra_time_ratio=k))
            try:
                seconds = training_time(cfg)
            except ConfigError:
                continue
            if best[0] is None or seconds < best[0]:
                best = (seconds, [f"dbsl.num_small={num_small}"] + ([f"dbsl.extra_time_ratio={k:g}"] if num_small
                                                                     else []))
    return best


# ----------------------------------------------------------------------------------------------------- a trial
def quote(value) -> str:
    """A Hydra override value that may hold '=', ',' or brackets (a run directory's name)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class Tuner:
    def __init__(self, spec: TuneSpec, study_name: str, base: Config):
        self.spec, self.study_name, self.base = spec, study_name, base
        self.dir = layout.study_dir(base.results_dir, study_name)
        self.budget = self._budget()

    def _budget(self) -> Optional[float]:
        if self.spec.budget is not None:
            return self.spec.budget
        if self.spec.budget_ratio is None:
            return None
        cfg = compose_config(self.spec.overrides + ["dbsl.num_small=0"])
        return self.spec.budget_ratio * training_time(cfg)

    def check_budget(self) -> None:
        """A budget must admit at least one configuration of the search space (checked at the fastest corners:
        every n_S with k, or B_S/B_L, at both ends of its range); a ConfigError saying how far to raise it."""
        if self.budget is None:
            return
        fastest, where = fastest_plan(self.spec, self.base)
        if fastest is not None and fastest <= self.budget * (1 + PLAN_TOLERANCE):
            return
        option = f"--budget={self.spec.budget:g}" if self.spec.budget is not None else \
            f"--budget-ratio={self.spec.budget_ratio:g}"
        if fastest is None:
            raise ConfigError(f"{option}: no configuration of the search space has a plan; widen --num-small or "
                              "--extra-time-ratio / --batch-ratio")
        need = f"--budget {fastest:.4g}" if self.spec.budget is not None else \
            f"--budget-ratio {fastest / self.budget * self.spec.budget_ratio:.3g}"
        raise ConfigError(f"{option}: the budget of {self.budget:.4g} modelled seconds admits no configuration: the "
                          f"fastest plan of the search space ({' '.join(where)}) takes {fastest:.4g} s; raise it to "
                          f"at least {need}, or search other values")

    def run_dir(self, trial_overrides: Sequence[str]) -> Path:
        return self.dir / layout.RUNS / run_dirname(",".join(sorted(trial_overrides)))

    def objective(self, trial: optuna.Trial):
        """Run the trial's config as an ordinary run; raise TrialPruned for infeasible plans and hopeless runs."""
        trial_overrides = suggest(trial, self.spec, self.base)
        run_dir = self.run_dir(trial_overrides)
        overrides = self.spec.overrides + trial_overrides
        trial.set_user_attr("overrides", trial_overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            cfg = compose_config(overrides + [f"output_dir={quote(run_dir)}", f"logger.group={quote(self.study_name)}"])
            plan = build_plan(cfg, dataset_size(cfg))
        except ConfigError as err:  # e.g. no small batch fits the budget k gives: infeasible, not broken
            trial.set_user_attr("infeasible", str(err))
            raise optuna.TrialPruned(f"infeasible plan: {err}") from err
        estimate = training_time(cfg, plan)
        trial.set_user_attr("planned_time", estimate)
        trial.set_user_attr("batch_small", max(p.batch_small for p in plan.phases))
        if self.budget is not None and estimate > self.budget * (1 + PLAN_TOLERANCE):
            trial.set_constraint(BUDGET_CONSTRAINT, estimate - self.budget)
            trial.set_user_attr("infeasible", f"planned time {estimate:.4g} s > budget {self.budget:.4g} s")
            raise optuna.TrialPruned(trial.user_attrs["infeasible"])
        sinks = [PruningSink(trial)] if self.spec.objective == "accuracy" else []
        return self.result(trial, execute(cfg, overrides, extra_sinks=sinks))

    def result(self, trial: optuna.Trial, summary: dict):
        """The trial's objective value(s) from its run's summary, with its key metrics and the time constraint."""
        accuracy, seconds = summary["best"]["test_top1"], summary["modelled_time"]
        trial.set_user_attr("modelled_time", seconds)
        trial.set_user_attr("final_test_top1", summary["final"]["test_top1"])
        trial.set_user_attr("best_test_top1", accuracy)  # the run's key metrics, beside its run_dir (the dashboard)
        trial.set_user_attr("wall_time", summary["wall_time"])
        if self.budget is not None:  # Optuna's samplers treat a positive constraint value as infeasible
            trial.set_constraint(BUDGET_CONSTRAINT, seconds - self.budget)
        return accuracy if self.spec.objective == "accuracy" else (accuracy, seconds)


# ----------------------------------------------------------------------------------------------------- a study
def check_storage(url: str) -> str:
    """An Optuna storage URL that can be opened (its database driver exists, an SQLite file's folder exists); a
    ConfigError naming it otherwise, before any trial."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise ConfigError(f"--storage={url!r}: not a database URL Optuna can open ({err}); use e.g. "
                          "sqlite:///studies.db, or leave --storage out for the study's journal file") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise ConfigError(f"--storage={url}: the folder {folder} does not exist; create it or give another path")
    return url


def checked_journal(path: Path, repair: bool = True) -> Path:
    """The study's journal, checked before Optuna reads it: a torn last line (a process killed while appending) is
    set aside in a backup beside it, with a warning, and the study goes on (``repair=False``, for a reader such as the
    dashboard, which must not touch a file a tune process may be appending to: a ConfigError saying so); any other
    line that is not a journal entry is a ConfigError naming the file and the line (Optuna would stop with a raw
    JSONDecodeError)."""
    if not path.exists():
        return path
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except ValueError:
            raise ConfigError(f"{path}: line {number} is not a journal entry (damaged or edited); restore the file, "
                              "or continue in a new --study") from None
    if tail.strip():
        if not repair:
            raise ConfigError(f"{path}: ends in an incomplete line (a tune process is writing it, or was stopped "
                              "while writing it); continue the study with `just tune` (it sets the line aside), "
                              "then open the dashboard again")
        try:
            json.loads(tail)
            complete = data + b"\n"  # a whole entry without its newline: the next append would glue onto it
        except ValueError:
            complete = data[:len(data) - len(tail)]
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
        backup.write_bytes(data)
        write_atomic(path, complete)
        log.warning("%s ended in an incomplete line (a process stopped while writing it); the file as it was is kept "
                    "in %s, the study goes on without that line", path, backup)
    return path


def open_study(spec: TuneSpec, name: str, folder: Path, storage: Optional[str], seed: int,
               pruner: str) -> optuna.Study:
    """Create the study, or load it and check it searches the same thing."""
    folder.mkdir(parents=True, exist_ok=True)
    if storage is None:
        storage = JournalStorage(JournalFileBackend(str(checked_journal(folder / layout.JOURNAL))))
    directions = ["maximize"] if spec.objective == "accuracy" else ["maximize", "minimize"]
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        stored, wanted = existing.user_attrs.get("spec", {}), spec.identity()
        changed = {key: (stored.get(key), wanted[key]) for key in wanted if stored.get(key) != wanted[key]}
        if changed:
            detail = "; ".join(f"{key}: study has {old}, asked {new}" for key, (old, new) in changed.items())
            raise ConfigError(f"study {name!r} searches something else ({detail}); continue it with the same "
                              "overrides and options, or choose a new --study name")
    n_trials = len(existing.trials) if existing else 0
    sampler = optuna.samplers.TPESampler(seed=seed + n_trials)  # a new seed per session: no repeated proposals
    use_pruner = pruner == "median" and spec.objective == "accuracy"
    study = optuna.create_study(
        study_name=name, storage=storage, directions=directions, sampler=sampler, load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2) if use_pruner else optuna.pruners.NopPruner())
    if existing is None:
        study.set_user_attr("spec", spec.identity())
    # what optuna-dashboard shows: the objectives' names, and the time constraint a trial is judged by
    with warnings.catch_warnings():  # "experimental" since optuna 3.2, and what optuna-dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["best test top-1"] if spec.objective == "accuracy" else
                               ["best test top-1", "modelled time (s)"])
    study.set_user_attr("constraint", f"{BUDGET_CONSTRAINT} = modelled time - budget (s) <= 0" if spec.budget
                        is not None or spec.budget_ratio is not None else "none")
    return study


def retry_interrupted(study: optuna.Study, tuner: Tuner | None = None) -> int:
    """Trials left running by a killed process: one whose run had completed (the process stopped between the run and
    the study's record of it) is told its result from the run's record, so that its point is not evaluated twice;
    the others are marked failed and their parameters queued to run first (the run resumes from its checkpoint)."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        summary = read_summary(trial.user_attrs["run_dir"]) if trial.user_attrs.get("run_dir") else None
        if tuner is not None and summary and summary.get("status") == "completed":
            values = tuner.result(optuna.Trial(study, trial._trial_id), summary)
            study.tell(trial.number, values)
            log.info("trial %d was interrupted after its run completed: its result is taken from the run's record",
                     trial.number)
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        log.info("trial %d was interrupted: it runs again first (its run resumes from its checkpoint)", trial.number)
    return len(stale)


def finished_count(study: optuna.Study) -> int:
    """Finished trials, not counting interrupted ones that were queued again."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    return sum(t.state in FINISHED and t.number not in retried for t in trials)


def optimize(tuner: Tuner, study: optuna.Study, trials: int) -> None:
    """Run trials (ask/tell) until ``trials`` have finished; one failing trial does not stop the study."""
    done = finished_count(study)
    log.info("study %s: %d finished trials, running %d more", study.study_name, done, max(0, trials - done))
    for _ in range(max(0, trials - done)):
        trial = study.ask()
        try:
            study.tell(trial, tuner.objective(trial))
        except optuna.TrialPruned as err:
            trial.set_user_attr("pruned", str(err))
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned: %s", trial.number, err)
        except Exception as err:  # noqa: BLE001 - record it and go on; the run's record says failed (or diverged)
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            study.tell(trial, state=TrialState.FAIL)
            if isinstance(err, (Diverged, RunFailure)):  # the trial's settings or a dead worker, not a bug
                log.warning("trial %d failed: %s", trial.number, err)
            else:
                log.exception("trial %d failed", trial.number)


# ------------------------------------------------------------------------------------------------------ outputs
def best_trials(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    """The best feasible trial (one objective) or the Pareto front (two)."""
    if len(study.directions) > 1:
        return list(study.best_trials)
    feasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if all(v <= 0 for v in t.constraints.values())]
    return [max(feasible, key=lambda t: t.value)] if feasible else []


def trial_record(trial: optuna.trial.FrozenTrial) -> dict:
    return {"number": trial.number, "values": trial.values, "params": trial.params, "state": trial.state.name,
            "constraints": trial.constraints, **trial.user_attrs}


def save_outputs(study: optuna.Study, folder: Path) -> dict:
    """trials.csv, best.json and the plots; returns what best.json holds."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = study.trials_dataframe()
    write_atomic(folder / "trials.csv", frame.to_csv(index=False))
    best = {"study": study.study_name, "directions": [d.name for d in study.directions],
            "best": [trial_record(t) for t in best_trials(study)]}
    write_atomic(folder / "best.json", json.dumps(best, indent=2, default=str) + "\n")
    save_plots(study, folder)
    return best


def save_plots(study: optuna.Study, folder: Path) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    two = len(study.directions) > 1
    accuracy = {"target": (lambda t: t.values[0]), "target_name": "best test top-1"} if two else \
        {"target_name": "best test top-1"}
    plots = {"history.png": lambda: vis.plot_optimization_history(study, **accuracy),
             "importances.png": lambda: vis.plot_param_importances(study, **accuracy)}
    if two:
        plots["pareto.png"] = lambda: vis.plot_pareto_front(study, target_names=["best test top-1",
                                                                                 "modelled time (s)"])
    else:
        plots["intermediate.png"] = lambda: vis.plot_intermediate_values(study)
    written = []
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw()
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.savefig(folder / name, dpi=120, bbox_inches="tight")
            plt.close(figure)
            written.append(folder / name)
        except Exception as err:  # noqa: BLE001 - e.g. importances need two finished trials with varied params
            log.info("%s not drawn: %s", name, err)
    return written


def print_trials(study: optuna.Study, best: dict) -> None:
    table = Table(title=f"study {study.study_name}")
    for column in ("trial", "state", "params", "best top-1", "modelled s", "note"):
        table.add_column(column, overflow="fold")
    best_numbers = {b["number"] for b in best["best"]}
    for t in study.get_trials(deepcopy=False):
        over = t.constraints.get(BUDGET_CONSTRAINT, 0.0)
        note = t.user_attrs.get("infeasible") or t.user_attrs.get("pruned") or t.user_attrs.get("error") or \
            (f"over budget by {over:.3g} s" if over > 0 else "")
        table.add_row(f"{t.number}{' *' if t.number in best_numbers else ''}", t.state.name,
                      " ".join(f"{k}={v:g}" for k, v in t.params.items()),
                      "-" if not t.values else f"{t.values[0]:.4f}",
                      _seconds(t.user_attrs.get("modelled_time")), note[:100])
    Console(width=max(Console().width, 120)).print(table)


def _seconds(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def tune(spec: TuneSpec, name: str, base: Config, trials: int, storage: Optional[str] = None, seed: int = 0,
         pruner: str = "median") -> dict:
    """Run study ``name`` (new, or continued from its journal) until it holds ``trials`` finished trials; write and
    print its outputs; its best trials (best.json)."""
    tuner = Tuner(spec, name, base)
    tuner.check_budget()
    check_output_dir(tuner.dir, "results_dir")
    study = open_study(spec, name, tuner.dir, storage, seed, pruner)
    if tuner.budget is not None:
        log.info("modelled-time budget: %.4g s", tuner.budget)
    retry_interrupted(study, tuner)
    optimize(tuner, study, trials)
    best = save_outputs(study, tuner.dir)
    print_trials(study, best)
    log.info("study %s: %d trials; best.json, trials.csv and plots in %s", name, len(study.trials), tuner.dir)
    return best


if __name__ == "__main__":  # python -m dbsl.tune: the command is dbsl.cli.tune
    from .cli.tune import main

    raise SystemExit(main())
