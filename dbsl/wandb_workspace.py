"""The W&B workspace of one sweep group, as code (wandb-workspaces): ``dbsl dashboard GROUP [--save]``
(:mod:`dbsl.cli.dashboard`, ``just dashboard``).

The runs of a sweep share a W&B group (the sweep's name, or ``logger.group``; a tuning study's is the study's name).
The workspace shows only that group, grouped by scheme and n_S, so every line is the mean over seeds (with its
standard error), in four sections:

* accuracy against time: test top-1 against the modelled time and against the wall clock;
* the schedule per commit: resolution, learning rate, and each worker's batch size;
* the paper's claims against the baseline (Δ best top-1 and Δ time, seed by seed with a 95 % interval), computed
  by dbsl's report from the group's run records on this machine and shown as a table;
* per-worker time: compute, communication and waiting seconds per worker (communication and waiting are measured
  by the distributed executor only).

Without ``--save`` nothing goes over the network: the spec (the JSON W&B stores for a workspace) is written to
``--out`` (default ``results/dashboards/<GROUP>.json``) and the command says how to create it. With ``--save`` and
an API key (``wandb login``) it creates the workspace in ``--entity``/``--project`` and prints its URL.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from . import layout
from .errors import Unavailable, UserError
from .record import write_atomic
from .sinks.wandb import REACH_TIMEOUT, STEP_METRIC, WORKER_TIMES, has_api_key, server_answers, server_host, worker_key

DEFAULT_WORKERS = 4  # ps.num_workers when the group has no run records here
GROUP_BY = ("scheme.name", "plan.num_small")  # W&B config keys: one line per scheme and n_S


def record_folders(group: str, results: Path) -> List[Path]:
    """Where the group's run records are on this machine: a sweep's folder or a tuning study's runs."""
    return [p for p in (layout.sweep_dir(results, group), layout.trial_runs(results, group)) if p.is_dir()]


def claims_markdown(folders: Sequence[Path]) -> tuple[str, int]:
    """The claims table(s) of the records under ``folders`` as Markdown, and the workers per run (the most)."""
    from .report.claims import claims_tables
    from .report.collect import ReportError, group_runs, load_runs
    from .report.render import markdown

    if not folders:
        return "", DEFAULT_WORKERS
    try:
        runset = load_runs(folders)
    except ReportError:
        return "", DEFAULT_WORKERS
    workers = runset.runs["num_workers"].dropna()
    tables = claims_tables(runset, group_runs(runset))
    text = "\n\n".join(f"**{t.title}**\n\n{markdown(t.display)}\n\n{t.notes[0]}" for t in tables)
    return text, int(workers.max()) if len(workers) else DEFAULT_WORKERS


def build_workspace(group: str, project: str, entity: str, workers: int, claims: str):
    """The wandb_workspaces Workspace for ``group`` (nothing is sent)."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    ranks = range(1, workers + 1)
    mean = dict(groupby_aggfunc="mean", groupby_rangefunc="stderr")
    wide = wr.Layout(w=24, h=8)

    def line(title, x, y, title_x, title_y, **kw):
        return wr.LinePlot(title=title, x=x, y=list(y), title_x=title_x, title_y=title_y, **mean, **kw)

    def bars(kind):
        return wr.BarPlot(title=f"{kind} time per worker (s)", metrics=[worker_key(r, f"{kind}_time") for r in ranks],
                          orientation="v", **mean)

    if not claims:
        claims = (f"No run records of `{group}` on this machine: run the sweep here (or pass `--records`), then "
                  f"`just dashboard {group}` again; `just report` gives the same table.")
    sections = [
        ws.Section(name="Accuracy against time", is_open=True, panels=[
            line("test top-1 vs modelled time", "modelled_time", ["test_top1"], "modelled time (s)", "test top-1"),
            line("test top-1 vs wall clock", "wall_time", ["test_top1"], "wall clock (s)", "test top-1"),
        ]),
        ws.Section(name="Schedule per commit", is_open=True, panels=[
            line("resolution", STEP_METRIC, ["resolution"], "commit", "px"),
            line("learning rate", STEP_METRIC, ["lr"], "commit", "LR"),
            line("batch size per worker", STEP_METRIC, [worker_key(r, "batch_size") for r in ranks], "commit",
                 "batch size"),
        ]),
        ws.Section(name="Claims against the baseline", is_open=True, panels=[
            wr.MarkdownPanel(markdown=claims, layout=wide),
        ]),
        ws.Section(name="Per-worker time", is_open=True,
                   panels=[bars(kind) for kind in WORKER_TIMES if kind != "evaluation"]),
    ]
    return ws.Workspace(
        entity=entity, project=project, name=f"dbsl: {group}", sections=sections,
        settings=ws.WorkspaceSettings(x_axis=STEP_METRIC, max_runs=100),
        runset_settings=ws.RunsetSettings(filters=[expr.Metric("Group") == group],
                                          groupby=[expr.Config(key) for key in GROUP_BY]),
    )


def workspace_spec(workspace) -> dict:
    """What ``Workspace.save`` sends, as JSON (the library's own serialisation, without the network call)."""
    return json.loads(workspace._to_model().model_dump_json(by_alias=True, exclude_none=True))


def panel_metrics(spec: dict) -> Iterable[tuple[str, str, List[str]]]:
    """(section, panel type, metric names) of every chart in a spec; x axes included."""
    for section in spec["spec"]["section"]["panelBankConfig"]["sections"]:
        for panel in section["panels"]:
            config = panel.get("config", {})
            names = list(config.get("metrics", []))
            if config.get("xAxis"):
                names.append(config["xAxis"])
            yield section["name"], panel["viewType"], names


def write_workspace(group: str, project: str = "dbsl", entity: Optional[str] = None,
                    records: Optional[Sequence[Path]] = None, workers: Optional[int] = None, out: Optional[Path] = None,
                    save: bool = False) -> int:
    """Write the workspace spec of ``group`` (default ``results/dashboards/<group>.json``); with ``save``, create the
    workspace in W&B too. ``records``: the group's run record folders (default :func:`record_folders`). Bad input is
    a :class:`~dbsl.errors.UserError`; no API key or no server for ``save`` is :class:`~dbsl.errors.Unavailable`."""
    folders = records if records is not None else record_folders(group, Path("results"))
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise UserError(f"--records: no such folder {', '.join(missing)}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers={workers}: needs at least 1 worker")
    if save and not has_api_key():
        raise Unavailable(f"no W&B API key: run `wandb login` (or set WANDB_API_KEY), then `just dashboard {group} "
                          "--save` again; without --save the spec is written offline")
    if save and not server_answers():
        host, port = server_host()
        raise Unavailable(f"the W&B server {host}:{port} does not answer within {REACH_TIMEOUT:g} s (no network?); "
                          f"run `just dashboard {group}` without --save to write the spec offline, and --save again "
                          "when it answers")
    claims, found_workers = claims_markdown(folders)
    if not claims:
        print(f"note: no completed run records of {group!r} under "
              f"{', '.join(map(str, folders)) or 'results/sweeps/' + group}: the claims panel says so",
              file=sys.stderr)
    if save and not entity:
        import wandb

        entity = wandb.Api().default_entity
    workspace = build_workspace(group, project, entity or "", workers or found_workers, claims)
    out = out or Path("results") / "dashboards" / f"{group}.json"
    spec = workspace_spec(workspace)
    write_atomic(out, json.dumps(spec, indent=2) + "\n")
    panels = sum(1 for _ in panel_metrics(spec))
    if not save:
        print(f"wrote the W&B workspace of group {group!r} ({panels} panels) to {out}; nothing was sent. "
              f"To create it: `wandb login`, then `just dashboard {group} --save` (add --entity/--project if "
              "not your default entity and project dbsl)")
        return 0
    workspace.save()
    print(f"created the W&B workspace of group {group!r} ({panels} panels): {workspace.url} (spec: {out})")
    return 0

