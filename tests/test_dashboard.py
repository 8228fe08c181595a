"""`just dashboard GROUP` (dbsl dashboard): the W&B workspace of a sweep group, built with no network
from the group's run records, checked against what real offline W&B runs of that group logged."""
from __future__ import annotations

import json
import re

from dbsl.record import find_runs, read_metric_rows, read_summary
from dbsl.one_run import execute
from dbsl import wandb_workspace
from dbsl.cli import dashboard
from test_sweeps import TINY, hydra_multirun
from test_wandb import key, no_credentials, read_wandb_records  # noqa: F401 - a fixture

SMALL = [*TINY, "ps.num_workers=2", "dbsl.num_small=1", "logger=wandb", "logger.progress=false"]


def logged(run_dir) -> dict:
    """What the offline W&B run of a run directory holds: its group, config, history keys and summary keys."""
    (log_file,) = run_dir.glob("wandb/offline-run-*/*.wandb")
    records = read_wandb_records(log_file)
    by_type = lambda kind: [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]  # noqa: E731
    (run,) = by_type("run")
    return {"group": run.run_group, "config": {i.key: json.loads(i.value_json) for i in run.config.update},
            "history": {key(i) for h in by_type("history") for i in h.item},
            "summary": {key(i) for s in by_type("summary") for i in s.update}}


def test_dashboard_spec_names_only_metrics_the_sink_logged(compose, tmp_path, monkeypatch, no_credentials):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # a closed port: any network call would fail
    results = tmp_path / "results"
    # the smoke sweep's baseline and hybrid through the real Hydra app (simulated executor), W&B group "smoke"
    assert hydra_multirun(monkeypatch, "sweep_name=smoke", "scheme=baseline,hybrid", *SMALL,
                          f"results_dir={results}") == 0
    # and a distributed run in the same group: only it measures the workers' communication and waiting
    distributed = results / "sweeps" / "smoke" / "distributed"
    overrides = [*SMALL, "scheme=hybrid", "executor=distributed", "logger.group=smoke"]
    assert execute(compose([*overrides, f"output_dir={distributed}"]), overrides)["status"] == "completed"
    runs = {r: logged(r) for r in find_runs(results / "sweeps" / "smoke")}
    assert len(runs) == 3 and {run["group"] for run in runs.values()} == {"smoke"}

    monkeypatch.chdir(tmp_path)
    assert dashboard.main(["smoke"]) == 0  # offline: writes the spec
    spec = json.loads((results / "dashboards" / "smoke.json").read_text())
    runset = spec["spec"]["section"]["runSets"][0]
    assert runset["filters"]["filters"] == [{"key": {"section": "run", "name": "group"}, "op": "=", "value": "smoke",
                                             "disabled": False}]
    # one line per scheme and n_S: the runs' W&B config holds both keys, with the values of their records
    assert [g["name"] for g in runset["grouping"]] == ["scheme.value.name", "plan.value.num_small"]
    for run_dir, run in runs.items():
        summary = read_summary(run_dir)
        assert (run["config"]["scheme"]["name"], run["config"]["plan"]["num_small"]) == \
            (summary["scheme"], summary["num_small"])

    panels = list(wandb_workspace.panel_metrics(spec))
    sections = {section for section, _, _ in panels}
    assert sections == {"Accuracy against time", "Schedule per commit", "Claims against the baseline",
                        "Per-worker time"}
    simulated = [run for run_dir, run in runs.items() if run_dir != distributed]
    for section, kind, names in panels:
        if kind == "Run History Line Plot":  # series: in every run's history
            assert names and all(name in run["history"] for run in runs.values() for name in names), names
        elif kind == "Bar Chart":  # per-worker totals: in the distributed run's summary
            assert names and all(name in runs[distributed]["summary"] for name in names), names
    charted = {name for _, _, names in panels for name in names}
    assert {"test_top1", "modelled_time", "wall_time", "commit", "resolution", "lr"} <= charted
    workers = {int(r["worker"]) for run_dir in runs for r in read_metric_rows(run_dir / "metrics.csv")}
    assert {int(m.group(1)) for name in charted if (m := re.match(r"worker/(\d+)/", name))} == workers == {1, 2}
    assert {f"worker/{w}/{kind}_time" for w in workers for kind in ("compute", "communication", "waiting")} <= \
        charted
    assert all(f"worker/{w}/compute_time" in run["history"] for w in workers for run in simulated)

    # the claims table: the hybrid's change against the baseline, from the records (one seed: no interval)
    (claims,) = [p for s in spec["spec"]["section"]["panelBankConfig"]["sections"] for p in s["panels"]
                 if p["viewType"] == "Markdown Panel"]
    by_scheme = {read_summary(r)["scheme"]: read_summary(r) for r in runs if r != distributed}
    top1 = (by_scheme["hybrid"]["best"]["test_top1"] - by_scheme["baseline"]["best"]["test_top1"]) * 100
    # time is judged on the measured clock (the records keep one), with the modelled clock's change beside it
    measured = (by_scheme["hybrid"]["measured_time"] / by_scheme["baseline"]["measured_time"] - 1) * 100
    modelled = (by_scheme["hybrid"]["modelled_time"] / by_scheme["baseline"]["modelled_time"] - 1) * 100
    (row,) = [line for line in claims["config"]["value"].splitlines() if line.startswith("| hybrid | 1 |")]
    assert f"| {top1:+.2f} |" in row and f"| {measured:+.1f} | measured" in row and f"| {modelled:+.1f} |" in row

    # creating it in W&B needs an API key: without one, one line and no prompt
    assert dashboard.main(["smoke", "--save"]) == 1


def test_without_records_the_claims_panel_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert dashboard.main(["nowhere", "--out", str(tmp_path / "d.json")]) == 0
    spec = json.loads((tmp_path / "d.json").read_text())
    assert "No run records of `nowhere`" in json.dumps(spec)
    assert "just dashboard nowhere --save" in capsys.readouterr().out
    assert dashboard.main(["nowhere", "--records", str(tmp_path / "missing")]) == 2
    assert "--records: no such folder" in capsys.readouterr().err
