"""Bad input never costs a user their results (issue 17): every case of the issue, table-driven.

For each case: the exit status (2 for bad input, 1 for a diverged run, 130 for Ctrl-C), one ``error:`` line and
no traceback, the key or file named in it, and no record left that looks complete (nor a file removed that the
tool did not write). The tools run in this process through their real entry points (``dbsl.run``'s ``cli()`` is
the real Hydra app); the cases that need a real console, a signal or another user run as subprocesses.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dbsl.record import RunRecord, find_runs, read_metric_rows
from dbsl.one_run import execute
from test_distributed import TINY as DISTRIBUTED, _processes_with

ROOT = Path(__file__).resolve().parents[1]
# 8 commits (2 epochs x 4 workers) on 512 synthetic images at width 2: about a second per run
FAST = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=512", "dataset.synthetic_test=64",
        "schedule.epochs=2", "optim.lr_milestones=[]", "schedule.cycle_ends=[1,2]", "train.eval_every=2",
        "train.threads=1", "logger.progress=false"]
COMMITS = 8


def invoke(tool: str, args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """``python -m dbsl.<tool> <args>`` through its entry point in this process: (exit status, stdout, stderr)."""
    import dbsl.cli.calibrate
    import dbsl.cli.plan
    import dbsl.cli.report
    import dbsl.cli.sweep
    import dbsl.cli.tune
    from hydra.core.global_hydra import GlobalHydra

    from dbsl import run

    capsys.readouterr()
    if tool == "run":
        monkeypatch.setattr(sys, "argv", ["dbsl.run", *args])
        GlobalHydra.instance().clear()
        try:
            run.cli()
            code = 0
        except SystemExit as done:
            code = done.code
        finally:
            GlobalHydra.instance().clear()
    else:
        main = {"plan": dbsl.cli.plan.main, "tune": dbsl.cli.tune.main, "calibrate": dbsl.cli.calibrate.main,
                "report": dbsl.cli.report.main, "sweep": dbsl.cli.sweep.main}[tool]
        code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The one ``error:`` line of a failed command's stderr (and no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def completed_records(folder: Path) -> list[Path]:
    """Run records under ``folder`` whose summary says completed."""
    def completed(run_dir: Path) -> bool:
        try:
            return json.loads((run_dir / "summary.json").read_text()).get("status") == "completed"
        except ValueError:
            return False

    return [r for r in find_runs(folder) if completed(r)]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """A folder holding one completed run record."""
    import torch

    root = tmp_path_factory.mktemp("records")
    threads = torch.get_num_threads()
    try:
        from dbsl.compose import compose_config

        execute(compose_config(FAST + [f"output_dir={root / 'runs' / 'ok'}"]))
    finally:
        torch.set_num_threads(threads)
    return root


# ------------------------------------------------------------------------------------------- one line per error
# (tool, arguments, exit status, what the error line must name); {tmp}: this case's folder, {file}: a plain file
# there, {records}: a folder of run records, {foreign}: a folder holding a file of the user's
CASES = [
    ("run", ["experiment=smok"], 2, ["experiment=smok", "smoke", "paper_cifar100"]),
    ("run", ["experiment=smoke", "results_dir="], 2, ["results_dir=''", "empty"]),
    ("run", ["experiment=smoke", "results_dir={file}"], 2, ["results_dir={file}", "is a file"]),
    ("run", ["experiment=smoke", "results_dir={file}/results"], 2, ["{file} is a file"]),
    ("run", ["experiment=smoke", "results_dir=/proc/x"], 2, ["results_dir=/proc/x", "cannot create folders in /proc"]),
    ("run", ["experiment=smoke", "hydra.run.dir=/proc/x"], 2, ["hydra.run.dir=/proc/x", "cannot create folders"]),
    ("run", ["experiment=smoke", "optim.lr=abc"], 2, ["optim.lr", "Float"]),
    ("run", ["experiment=smoke", "optim.lrr=0.1"], 2, ["optim.lrr", "spelling"]),
    ("run", ["experiment=smoke", "optim.lr=[1"], 2, ["optim.lr=[1"]),
    ("run", ["experiment=smoke", "optim.lr=inf"], 2, ["optim.lr", "not a finite number"]),
    ("plan", ["experiment=smoke", "dbsl.extra_time_ratio=nan"], 2, ["dbsl.extra_time_ratio", "not a finite number"]),
    ("run", ["experiment=smoke", "+foo=1"], 2, ["foo: no such setting", "+foo"]),  # Hydra adds it; nothing reads it
    ("plan", ["experiment=smoke", "+train.fast=true"], 2, ["train.fast: no such setting"]),
    ("run", ["experiment=smoke", "scheme=dbsl", "dbsl.num_small=9"], 2, ["dbsl.num_small=9", "ps.num_workers"]),
    # a label that is not what runs: a baseline recorded as "dbsl" would count in the report as a DBSL seed
    ("run", ["experiment=smoke", "scheme.name=dbsl"], 2, ["scheme.name='dbsl'", "make the scheme baseline",
                                                           "scheme=baseline"]),
    ("plan", ["experiment=smoke", "scheme=cpl", "scheme.dual_batch=true"], 2, ["scheme.name='cpl'",
                                                                                "make the scheme hybrid"]),
    ("run", ["experiment=smoke", "dataset=cifar100", "dataset.root={tmp}"], 2, ["CIFAR-100 not found", "dataset.root"]),
    ("plan", ["experiment=paper_cifar10"], 2, ["experiment=paper_cifar10", "paper_cifar100"]),
    ("plan", ["experiment=smoke", "scheme=dbsl", "dbsl.extra_time_ratio=0.5"], 2, ["dbsl.extra_time_ratio=0.5"]),
    ("sweep", ["no_such_sweep"], 2, ["no_such_sweep", "table8"]),
    ("tune", ["--trials", "0", "experiment=smoke", "scheme=dbsl"], 2, ["--trials=0"]),
    ("tune", ["--storage", "bogus://x", "experiment=smoke", "scheme=dbsl"], 2, ["--storage='bogus://x'",
                                                                                 "not a database URL"]),
    ("tune", ["--storage", "sqlite:///{tmp}/no/such/x.db", "experiment=smoke", "scheme=dbsl"], 2,
     ["the folder {tmp}/no/such does not exist"]),
    ("tune", ["--trials", "1", "--study", "../../escape", "experiment=smoke", "scheme=dbsl", "results_dir={tmp}"], 2,
     ["--study='../../escape'", "not a usable name"]),
    ("tune", ["--trials", "-3", "experiment=smoke", "scheme=dbsl"], 2, ["--trials=-3"]),
    ("tune", ["--trials", "2", "--budget-ratio", "0.5", "experiment=smoke", "scheme=dbsl", "results_dir={tmp}"], 2,
     ["--budget-ratio=0.5", "admits no configuration", "raise it to at least --budget-ratio"]),
    ("tune", ["--trials", "2", "experiment=smok", "scheme=dbsl"], 2, ["experiment=smok", "smoke"]),
    ("tune", ["--trials", "2", "experiment=smoke", "scheme=dbsl", "results_dir={file}"], 2, ["results_dir", "{file}"]),
    ("calibrate", ["--resolutions", "16,8,8", "experiment=smoke", "results_dir={tmp}"], 2,
     ["--resolutions=16,8,8", "8 px given more than once"]),
    ("calibrate", ["--resolutions", "", "experiment=smoke"], 2, ["--resolutions", "empty"]),
    ("calibrate", ["experiment=smok"], 2, ["experiment=smok", "smoke"]),
    ("calibrate", ["experiment=smoke", "results_dir={file}"], 2, ["results_dir", "{file}"]),
    ("report", ["{records}", "--out", "{records}"], 2, ["--out {records}", "is the input folder"]),
    ("report", ["{records}/runs", "--out", "{records}"], 2, ["--out {records}", "contains the input folder"]),
    ("report", ["{records}", "--out", "{file}"], 2, ["--out", "{file} is a file"]),
    ("report", ["{records}", "--out", "{foreign}"], 2, ["--out {foreign}", "mine.txt", "no earlier report"]),
    ("report", ["{records}", "--out", "{foreign}", "--force"], 2, ["--out {foreign}", "does not change this"]),
    ("report", ["{records}", "--out", "", "--force"], 2, ["--out ''", "empty"]),
    ("report", ["{records}", "--out", ".", "--force"], 2, ["--out '.'", "the current folder"]),
    ("report", ["{records}", "--out", "..", "--force"], 2, ["--out ..", "the current folder or one above it"]),
    ("report", ["{tmp}", "--out", "{tmp}/report"], 2, ["no run records", "{tmp}"]),
]


@pytest.mark.parametrize("tool, args, status, named", CASES,
                         ids=[f"{c[0]}:{' '.join(c[1])[:60]}" for c in CASES])
def test_bad_input_gets_one_error_line(tool, args, status, named, records, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "plain.txt").write_text("a file of the user's\n")
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("the user's\n")
    records_before = sorted(p.relative_to(records) for p in records.rglob("*"))
    values = {"tmp": str(folder), "file": str(folder / "plain.txt"), "records": str(records), "foreign": str(foreign)}
    args = [a.format(**values) for a in args]
    if tool == "run" and not any(a.startswith("results_dir=") for a in args):
        args.append(f"results_dir={folder / 'results'}")
    code, out, err = invoke(tool, args, capsys, monkeypatch)
    assert code == status, out + err
    line = one_error_line(err)
    for name in named:
        assert name.format(**values) in line, line
    # nothing that looks like a result, and nothing of the user's touched
    assert completed_records(tmp_path) == []
    assert not list(folder.rglob("summary.json")) and not list(folder.rglob("journal.log"))
    assert (folder / "plain.txt").read_text() == "a file of the user's\n"
    assert (foreign / "mine.txt").read_text() == "the user's\n" and sorted(foreign.iterdir()) == [foreign / "mine.txt"]
    assert sorted(p.relative_to(records) for p in records.rglob("*")) == records_before
    assert not Path("/runs").exists()  # the empty results_dir did not write at the filesystem's root


def test_help_and_debug(records, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("plan", ["--help"], capsys, monkeypatch)
    assert code == 0 and out.startswith("usage: python -m dbsl.plan") and "--json" in out and not err
    # --debug (or HYDRA_FULL_ERROR=1) lets the error through with its traceback
    from hydra.errors import MissingConfigException

    from dbsl.config import ConfigError

    with pytest.raises(MissingConfigException, match="experiment/smok"):
        invoke("run", ["--debug", "experiment=smok", f"results_dir={tmp_path}"], capsys, monkeypatch)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError, match="--trials=0"):
        invoke("tune", ["--trials", "0", "experiment=smoke", "scheme=dbsl"], capsys, monkeypatch)
    # an internal error is not reworded: it keeps its traceback
    from dbsl.errors import reported, set_debug

    set_debug(False)
    with pytest.raises(KeyError, match="a bug"), reported("-"):
        raise KeyError("a bug")


def test_report_never_removes_what_it_did_not_write(records, tmp_path, capsys, monkeypatch):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.md").write_text("mine\n")
    (out / "README.md").write_text("my readme\n")
    for force in ([], ["--force"]):  # a folder that is not the report's own: refused, with or without --force
        assert invoke("report", [str(records), "--out", str(out), "--no-figures"] + force, capsys, monkeypatch)[0] == 2
        assert (out / "README.md").read_text() == "my readme\n" and sorted(p.name for p in out.iterdir()) == [
            "README.md", "notes.md"]
    # a folder holding only an earlier report is replaced without --force
    fresh = tmp_path / "fresh"
    for _ in range(2):
        assert invoke("report", [str(records), "--out", str(fresh), "--no-figures"], capsys, monkeypatch)[0] == 0
    assert (fresh / "index.html").is_file() and not list(tmp_path.glob(".fresh*"))
    # somebody added a file to the report: refused without --force; with it the report is rewritten, the file stays
    (fresh / "notes.md").write_text("mine\n")
    assert invoke("report", [str(records), "--out", str(fresh), "--no-figures"], capsys, monkeypatch)[0] == 2
    assert invoke("report", [str(records), "--out", str(fresh), "--no-figures", "--force"], capsys, monkeypatch)[0] == 0
    assert (fresh / "notes.md").read_text() == "mine\n" and "dbsl report" in (fresh / "README.md").read_text()


def test_report_out_empty_or_here_leaves_the_repository_alone(records, tmp_path, capsys, monkeypatch):
    """Issue 29: `dbsl.report R --out "" --force` (or `--out .`) with R elsewhere wrote the report into the current
    folder and replaced its README.md; a git repository is refused as --out too."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "README.md").write_text("the project's readme\n")
    monkeypatch.chdir(repo)
    before = sorted((p.relative_to(repo), p.stat().st_mtime_ns) for p in repo.rglob("*"))
    for out in ("", ".", str(repo)):
        code, _, err = invoke("report", [str(records), "--out", out, "--force", "--no-figures"], capsys, monkeypatch)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("report", [str(records), "--out", str(repo), "--force", "--no-figures"], capsys, monkeypatch)
    assert code == 2 and "a git repository" in err
    assert sorted((p.relative_to(repo), p.stat().st_mtime_ns) for p in repo.rglob("*")) == before


# ------------------------------------------------------------------------------------- records that cannot lie
class Interrupt:
    """A sink that stops the run (as Ctrl-C would) once commit ``at`` is recorded."""

    def __init__(self, at: int):
        self.at = at

    def log_commit(self, row: dict) -> None:
        if row["commit"] == self.at:
            raise KeyboardInterrupt

    def log_summary(self, summary: dict) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A run stopped after commit 5 of 8, its last checkpoint at commit 3 (checkpoint_every=2)."""
    import torch

    from dbsl.compose import compose_config

    run_dir = tmp_path_factory.mktemp("interrupted") / "run"
    threads = torch.get_num_threads()
    try:
        with pytest.raises(KeyboardInterrupt):
            execute(compose_config(FAST + ["checkpoint_every=2", f"output_dir={run_dir}"]),
                    extra_sinks=[Interrupt(5)])
    finally:
        torch.set_num_threads(threads)
    assert [int(r["commit"]) for r in read_metric_rows(run_dir / "metrics.csv")] == list(range(6))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["commit"] == 3
    return run_dir


def test_an_interrupted_run_says_so_and_the_report_leaves_it_out(interrupted, records, tmp_path, capsys,
                                                                 monkeypatch):
    """Ctrl-C is not a failure: the record says interrupted, and the report lists it as such, outside the numbers."""
    summary = json.loads((interrupted / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "the same command resumes" in summary["error"]
    both = tmp_path / "records"
    shutil.copytree(records, both)
    shutil.copytree(interrupted, both / "runs" / "stopped")
    code, out, err = invoke("report", [str(both), "--out", str(tmp_path / "report"), "--no-figures"], capsys,
                            monkeypatch)
    assert code == 0, out + err
    runs = {Path(r["run_dir"]).name: r for r in csv.DictReader(open(tmp_path / "report" / "tables" / "runs.csv"))}
    assert runs["stopped"]["status"] == "interrupted" and runs["stopped"]["included"] == "False"
    assert runs["stopped"]["note"].startswith("interrupted (Ctrl-C): 6 of 8 commits recorded")
    assert runs["ok"]["status"] == "completed" and runs["ok"]["included"] == "True"
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "2 run records: 1 completed, 0 failed, 0 incomplete, 1 interrupted," in readme


def _cut_metrics(run_dir: Path) -> None:  # a torn file: cut in the middle of commit 2's row
    text = (run_dir / "metrics.csv").read_text()
    row = text.splitlines(keepends=True)
    (run_dir / "metrics.csv").write_text("".join(row[:3]) + row[3][:len(row[3]) // 2])


RECORD_CASES = {  # what is damaged -> (how, the file the error names)
    "torn metrics.csv": (_cut_metrics, "metrics.csv"),
    "corrupt summary.json": (lambda d: (d / "summary.json").write_text('{"status": "runn'), "summary.json"),
    "zero-byte checkpoint.pt": (lambda d: (d / "checkpoint.pt").write_bytes(b""), "checkpoint.pt"),
    "corrupt checkpoint.pt": (lambda d: (d / "checkpoint.pt").write_bytes(b"PK\x03\x04" + os.urandom(300)),
                              "checkpoint.pt"),
}


@pytest.mark.parametrize("case", RECORD_CASES)
def test_a_damaged_record_stops_the_resume_and_overwrite_recovers(case, interrupted, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    damage, named = RECORD_CASES[case]
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    damage(run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    command = FAST + ["checkpoint_every=2", f"hydra.run.dir={run_dir}"]
    code, out, err = invoke("run", command, capsys, monkeypatch)
    assert code == 2, out + err
    line = one_error_line(err)
    assert str(run_dir / named) in line and "overwrite=true" in line, line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name in before} == before
    assert completed_records(tmp_path) == []
    # the way out the message names
    assert invoke("run", command + ["overwrite=true"], capsys, monkeypatch)[0] == 0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert [int(r["commit"]) for r in read_metric_rows(run_dir / "metrics.csv")] == list(range(COMMITS))


def test_another_runs_checkpoint_is_refused_naming_both_identities(interrupted, tmp_path, capsys, monkeypatch):
    """Issue 29: a checkpoint of another config (here another seed, and another n_S) in a run folder was resumed and
    the run recorded as completed with the foreign weights."""
    monkeypatch.chdir(tmp_path)
    for other in (["seed=1"], ["scheme=dbsl", "dbsl.num_small=1"]):
        run_dir = tmp_path / f"run{len(other)}"
        shutil.copytree(interrupted, run_dir)
        before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        code, out, err = invoke("run", FAST + other + ["checkpoint_every=2", f"hydra.run.dir={run_dir}"], capsys,
                                monkeypatch)
        assert code == 2, out + err
        line = one_error_line(err)
        assert str(run_dir / "checkpoint.pt") in line and "belongs to another run" in line, line
        named = "seed: 0 -> 1" if other == ["seed=1"] else "dbsl.num_small: 2 -> 1"
        assert named in line, line
        assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name in before} == before
    assert completed_records(tmp_path) == []


def test_a_resume_with_other_threads_warns_and_the_summary_says_so(interrupted, tmp_path, capsys, monkeypatch):
    """Issue 29: resuming with another train.threads was silent, though the run is then no longer bit-for-bit
    repeatable."""
    import torch

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["threads"] == 1
    threads = torch.get_num_threads()
    try:
        code, out, err = invoke("run", [a for a in FAST if a != "train.threads=1"] + [
            "train.threads=2", "checkpoint_every=2", f"hydra.run.dir={run_dir}"], capsys, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, out + err
    assert "no longer bit-for-bit repeatable" in (run_dir / "run.log").read_text()  # the run's log, and the terminal
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["threads_per_attempt"] == [1, 2]


def test_a_metrics_cell_that_is_not_a_number_makes_the_record_malformed(records, tmp_path, capsys, monkeypatch):
    """Issue 29: a metrics.csv cell holding 'abc' was read as if it were a record (as NaN)."""
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = copy / "runs" / "ok" / "metrics.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    cells = lines[-1].rstrip("\n").split(",")
    cells[header.index("test_top1")] = "abc"
    path.write_text("".join(lines[:-1]) + ",".join(cells) + "\n")
    code, out, err = invoke("report", [str(copy), "--out", str(tmp_path / "report"), "--no-figures"], capsys,
                            monkeypatch)
    assert code == 0, out + err
    runs = list(csv.DictReader(open(tmp_path / "report" / "tables" / "runs.csv")))
    assert runs[0]["status"] == "malformed" and runs[0]["included"] == "False"
    assert "'abc' in column test_top1 at commit 7" in runs[0]["note"]


def test_a_diverged_run_ends_as_diverged_and_the_report_leaves_it_out(records, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    code, out, err = invoke("run", FAST + ["optim.lr=1e6", f"results_dir={results}"], capsys, monkeypatch)
    assert code == 1, out + err
    assert "the run diverged" in one_error_line(err) and "optim.lr" in one_error_line(err)
    [run_dir] = find_runs(results)
    summary = json.loads((run_dir / "summary.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert summary["status"] == "diverged" and "nan" in summary["error"]
    # a completed record with a gap in its rows (commits 2-3 cut out) is not averaged either
    gapped = tmp_path / "gapped"
    shutil.copytree(records / "runs" / "ok", gapped)
    lines = (gapped / "metrics.csv").read_text().splitlines(keepends=True)
    (gapped / "metrics.csv").write_text("".join(lines[:3] + lines[5:]))
    shutil.copytree(records / "runs" / "ok", tmp_path / "ok")
    assert invoke("report", [str(tmp_path), "--out", str(tmp_path / "report"), "--no-figures"], capsys,
                  monkeypatch)[0] == 0
    import pandas as pd

    runs = pd.read_csv(tmp_path / "report" / "tables" / "runs.csv").set_index("run_dir")
    assert runs.loc[str(run_dir), "status"] == "diverged" and not runs.loc[str(run_dir), "included"]
    assert runs.loc[str(gapped), "status"] == "malformed" and not runs.loc[str(gapped), "included"]
    assert "lacks the rows of commits 2-3" in runs.loc[str(gapped), "note"]
    assert runs.loc[str(tmp_path / "ok"), "included"]
    assert "1 diverged" in (tmp_path / "report" / "README.md").read_text()


def test_summary_json_is_strict_json(tmp_path):
    import math

    RunRecord(tmp_path).write_summary({"status": "diverged", "best": {"test_loss": math.nan}, "t": [math.inf, 1.0]})
    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary == {"status": "diverged", "best": {"test_loss": None}, "t": [None, 1.0]}


# ------------------------------------------------------------------------------------------ data checked first
def _png(path: Path, colour=(200, 10, 10)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 9), colour).save(path)


def test_bad_images_are_named_before_training_and_can_be_skipped(tmp_path, capsys, monkeypatch):
    from dbsl.config import DatasetConfig
    from dbsl.data import DataError, load_dataset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBSL_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "imagenet"
    for split in ("train", "val"):
        for cls in ("ant", "bee"):
            for i in range(3):
                _png(data / split / cls / f"{i}.png")
    (data / "train" / "ant" / "empty.png").write_bytes(b"")
    good = (data / "train" / "bee" / "0.png").read_bytes()
    (data / "train" / "bee" / "cut.png").write_bytes(good[:len(good) // 2])  # truncated
    results = tmp_path / "results"
    code, out, err = invoke("run", ["dataset=imagenet", f"dataset.root={data}", f"results_dir={results}"], capsys,
                            monkeypatch)
    assert code == 2, out + err
    line = one_error_line(err)
    assert "2 of 8 images" in line and "empty.png (empty file)" in line and "cut.png" in line, line
    assert "dataset.skip_bad_images=true" in line and not find_runs(tmp_path)
    # the skip option: the run trains without them
    cfg = DatasetConfig(name="imagenet", root=str(data), skip_bad_images=True)
    assert len(load_dataset(cfg).train) == 6
    # the verdicts are cached per (size, mtime): a file damaged behind the cache's back keeps its verdict, a
    # changed file is checked again
    victim = data / "train" / "ant" / "0.png"
    stat = victim.stat()
    victim.write_bytes(b"\0" * stat.st_size)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(load_dataset(cfg).train) == 6
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert len(load_dataset(cfg).train) == 5
    with pytest.raises(DataError, match=r"3 of 8 images .*0\.png"):
        load_dataset(DatasetConfig(name="imagenet", root=str(data)))


# ---------------------------------------------------------------------------------------- consoles and signals
def _console(*args: str, cwd: Path, prefix=(), **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


@pytest.mark.parametrize("command", [["run", "experiment=smok"], ["plan", "experiment=smoke", "optim.lr=-1"],
                                     ["forecast", "experiment=smok"], ["calibrate", "experiment=smok"]],
                         ids=lambda c: " ".join(c))
def test_no_warning_before_the_error_line_in_a_folder_without_results(command, tmp_path):
    """In a fresh folder (no results/conf, which Hydra's search path names) every warning shown (-W default): the
    console's stderr is dbsl's one error line and nothing before it (Hydra warned that the search path's folder
    was not available)."""
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "dbsl", *command], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_console_errors_a_sweep_and_a_read_only_results_dir(tmp_path):
    """The real consoles: the preset listing of `dbsl.sweep` (its runs' Hydra app fails at once) and a results_dir
    that this user may not write (root drops its override of file permissions with setpriv)."""
    proc = _console("dbsl.sweep", "smoke", "experiment=smok", f"results_dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "experiment=smok" in one_error_line(proc.stderr) and "smoke" in one_error_line(proc.stderr)
    assert not (tmp_path / "sweep").exists()

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root ignores file permissions and setpriv is missing")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search"]
    proc = _console("dbsl.run", "experiment=smoke", f"results_dir={locked / 'results'}", cwd=tmp_path, prefix=prefix)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_error_line(proc.stderr)
    assert f"cannot write into {locked}" in line and "results_dir" in line, line
    assert list(locked.iterdir()) == []


def test_a_parallel_sweep_of_bad_values_says_each_once_and_nothing_else(tmp_path):
    """Each job of a joblib multirun runs in a fresh process: its bad value is one log line and a row of the sweep's
    table; nothing else reaches the console (no traceback, and no warning about results/conf, which a folder of the
    user's does not have)."""
    proc = _console("dbsl.run", "-m", "experiment=smoke", "scheme=dbsl", "dbsl.num_small=9,8", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2", f"results_dir={tmp_path / 'results'}", cwd=tmp_path)
    # every run refused for bad input, nothing ran: bad input's exit status, and one error line at the end
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("error: every run of the multirun was refused: dbsl.num_small=9: n_S must lie in "
                                   "0..ps.num_workers=4; lower dbsl.num_small or raise ps.num_workers"), proc.stderr
    assert "Traceback" not in proc.stdout
    for n_small in (9, 8):
        assert proc.stdout.count(f"failed: dbsl.num_small={n_small}: n_S must lie in 0..ps.num_workers=4") == 1
    assert "0 completed, 0 skipped, 2 failed" in proc.stdout


def test_a_multirun_where_some_runs_ran_is_a_failed_sweep_not_bad_input(tmp_path):
    """One bad value beside a good one: the good run completes, so the sweep ends with status 1 (a failed run), not
    2, and without the 'every run was refused' line."""
    proc = _console("dbsl.run", "-m", *FAST, "scheme=dbsl", "dbsl.num_small=9,1", f"results_dir={tmp_path / 'r'}",
                    cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refused" not in proc.stderr and "1 completed, 0 skipped, 1 failed" in proc.stdout


def test_ctrl_c_prints_one_line_saying_the_run_resumes(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "dbsl.run", *FAST, "schedule.epochs=200", "schedule.cycle_ends=[]",
           f"results_dir={results}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen = []
    for line in proc.stdout:  # the log: wait until it trains
        seen.append(line)
        if "epoch 1/200" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "Traceback" not in out + err
    said = [line for line in (out + err).splitlines() if "interrupted" in line]
    assert len(said) == 1 and "resume" in said[0], out + err
    [run_dir] = find_runs(results)
    assert json.loads((run_dir / "summary.json").read_text())["status"] != "completed"


def test_killing_the_server_leaves_no_process(tmp_path):
    """SIGKILL to the server of a distributed run while its workers start: every process it started (the workers,
    the fork server, the resource tracker) is gone within seconds."""
    token = f"dbsl-test-{uuid.uuid4()}"
    cmd = [sys.executable, "-m", "dbsl.run", *DISTRIBUTED, "executor=distributed", "executor.timeout=60",
           f"results_dir={tmp_path}"]
    server = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "DBSL_TEST_TOKEN": token})
    deadline = time.monotonic() + 120
    while len(_processes_with(token)) < 5 and time.monotonic() < deadline:  # server, tracker, fork server, 2 workers
        time.sleep(0.05)
    assert len(_processes_with(token)) >= 5, "the workers did not start"
    server.kill()
    server.wait()
    deadline = time.monotonic() + 10
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


def test_the_same_run_in_two_folders_counts_once_and_a_conflict_is_named(records, tmp_path, capsys, monkeypatch):
    """Issue 29: the same run (config and seed) in two result folders was counted as two seeds, and reporting the
    folders together crashed in the claims' pairing step."""
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(records, first)
    shutil.copytree(records, second)
    code, out, err = invoke("report", [str(first), str(second), "--out", str(tmp_path / "r1"), "--no-figures"],
                            capsys, monkeypatch)
    assert code == 0, out + err
    runs = list(csv.DictReader(open(tmp_path / "r1" / "tables" / "runs.csv")))
    assert [r["included"] for r in runs].count("True") == 1
    assert any("an identical copy: counted once" in r["note"] for r in runs)
    # a copy that finished later with another result: a conflict; the newer copy counts, the other is named
    summary = json.loads((second / "runs" / "ok" / "summary.json").read_text())
    summary["final"]["test_top1"] = 0.123
    summary["finished"] = "2999-01-01T00:00:00+00:00"
    (second / "runs" / "ok" / "summary.json").write_text(json.dumps(summary))
    code, out, err = invoke("report", [str(first), str(second), "--out", str(tmp_path / "r2"), "--no-figures"],
                            capsys, monkeypatch)
    assert code == 0, out + err
    runs = {r["run_dir"]: r for r in csv.DictReader(open(tmp_path / "r2" / "tables" / "runs.csv"))}
    assert runs[str(second / "runs" / "ok")]["included"] == "True"
    note = runs[str(first / "runs" / "ok")]["note"]
    assert "differs in final_top1_pct: a conflict" in note and str(second / "runs" / "ok") in note


def test_records_and_reports_follow_the_umask(records, tmp_path, capsys, monkeypatch):
    """Issue 29: records were written 0600 and report folders 0700 (mkstemp, mkdtemp): a colleague sharing the
    results folder could not read them. With umask 022 a file is 0644 and a folder 0755, as open() and mkdir give."""
    import stat

    from dbsl.record import RunRecord

    old = os.umask(0o022)
    try:
        RunRecord(tmp_path / "run").write_summary({"status": "running"})
        assert stat.S_IMODE((tmp_path / "run" / "summary.json").stat().st_mode) == 0o644
        assert invoke("report", [str(records), "--out", str(tmp_path / "rep"), "--no-figures"], capsys,
                      monkeypatch)[0] == 0
        assert stat.S_IMODE((tmp_path / "rep").stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "rep" / "README.md").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_a_full_disk_is_one_line_and_the_earlier_file_stays(tmp_path, monkeypatch):
    """Issue 29: ENOSPC while writing a record ended in a traceback. The write is atomic, so the earlier summary
    stays; the error names the file and what to do."""
    import errno

    from dbsl.errors import user_error
    from dbsl.record import RunRecord, write_atomic

    record = RunRecord(tmp_path / "run")
    record.write_summary({"status": "running"})
    before = (tmp_path / "run" / "summary.json").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(Exception) as caught:
        record.write_summary({"status": "completed"})
    assert user_error(caught.value) is caught.value  # a user-facing error: one line, no traceback
    assert "summary.json: could not be written (the disk is full)" in str(caught.value)
    assert (tmp_path / "run" / "summary.json").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["summary.json"]  # no temporary file left
    # a refused write (a read-only file system, no permission) the same way
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with pytest.raises(Exception, match="could not be written \\(the file system is read-only\\)"):
        write_atomic(tmp_path / "run" / "summary.json", "{}")
    assert (tmp_path / "run" / "summary.json").read_bytes() == before


def test_a_killed_reports_staging_folder_is_removed_by_the_next_report(records, tmp_path, capsys, monkeypatch):
    """Issue 29: a `.rep_out.XXXX` staging folder stayed next to the report after SIGKILL. The next report removes
    staging folders marked as its own whose process is gone, and nothing else."""
    from dbsl.report.outdir import STAGING

    stale = tmp_path / ".rep_out.abc123"
    stale.mkdir()
    (stale / STAGING).write_text("999999999\n")  # no such process
    (stale / "README.md").write_text("half a report\n")
    theirs = tmp_path / ".rep_out.notes"  # a folder of somebody's that merely looks like one
    theirs.mkdir()
    (theirs / "mine.txt").write_text("keep\n")
    assert invoke("report", [str(records), "--out", str(tmp_path / "rep_out"), "--no-figures"], capsys,
                  monkeypatch)[0] == 0
    assert not stale.exists() and (theirs / "mine.txt").read_text() == "keep\n"
    assert not (tmp_path / "rep_out" / STAGING).exists()


def test_a_full_disk_while_writing_a_report_is_one_line(records, tmp_path, capsys, monkeypatch):
    import errno

    from dbsl.report import render

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(render.Table, "write", full)
    code, out, err = invoke("report", [str(records), "--out", str(tmp_path / "rep"), "--no-figures"], capsys,
                            monkeypatch)
    assert code == 2 and "the report could not be written (No space left on device)" in one_error_line(err)
    assert not (tmp_path / "rep").exists() and not list(tmp_path.glob(".rep.*"))


def test_a_torn_journal_line_is_set_aside_and_garbage_is_named(tmp_path, caplog):
    """Issue 29: a torn or garbage journal.log ended `dbsl.tune` in a raw JSONDecodeError, and after a torn last
    line every append broke the study for good."""
    from dbsl.config import ConfigError
    from dbsl.tune import checked_journal

    journal = tmp_path / "journal.log"
    whole = b'{"op_code": 0, "worker_id": "a"}\n{"op_code": 1, "worker_id": "a"}\n'
    journal.write_bytes(whole + b'{"op_code": 5, "wor')
    with caplog.at_level("WARNING", logger="dbsl"):
        assert checked_journal(journal) == journal
    assert journal.read_bytes() == whole  # the study goes on from its whole entries
    [backup] = tmp_path.glob("journal.log.*.bak")
    assert backup.read_bytes().endswith(b'{"op_code": 5, "wor') and "incomplete line" in caplog.text
    journal.write_bytes(b'{"op_code": 0}\nnot json at all\n{"op_code": 1}\n')
    with pytest.raises(ConfigError, match="journal.log: line 2 is not a journal entry"):
        checked_journal(journal)


def test_cpl_without_room_for_a_cycle_says_so(caplog):
    """Issue 29: CPL silently did nothing when every LR stage was one epoch long (no room for a cycle)."""
    from dbsl.compose import compose_config
    from dbsl.plan import build_plan

    cfg = compose_config(["experiment=smoke", "scheme=cpl", "schedule.epochs=3", "optim.lr_milestones=[1,2]",
                          "schedule.cycle_ends=[]"])
    with caplog.at_level("WARNING", logger="dbsl"):
        plan = build_plan(cfg, 1024)
    assert {p.resolution for p in plan.phases} == {16}  # what the warning is about: no 8 px phase at all
    assert "CPL has no cycle here: every LR stage (1, 1, 1 epochs)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="dbsl"):
        build_plan(compose_config(["experiment=smoke", "scheme=cpl"]), 1024)  # 2-epoch stages: a cycle, no warning
    assert "CPL" not in caplog.text


def test_a_key_given_twice_is_said_and_the_last_one_used(tmp_path):
    """Issue 29: `seed=1 seed=2` on one command line was accepted and the last one won silently. It still wins (a
    script may append an override on purpose), but the command says so, naming both."""
    cmd = [sys.executable, "-m", "dbsl.run", *FAST, "seed=1", "seed=2", f"results_dir={tmp_path / 'results'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: seed given more than once (seed=1 seed=2); the last one, seed=2, is used" in proc.stderr
    [run_dir] = find_runs(tmp_path / "results")
    assert json.loads((run_dir / "summary.json").read_text())["seed"] == 2


def test_ctrl_c_in_a_distributed_run_prints_no_page_of_tensorpipe_errors(tmp_path):
    """Issue 29: after the clean line, a distributed run stopped by Ctrl-C printed a page of TensorPipe errors from
    every process. Ctrl-C goes to the terminal's whole process group: the server and its workers."""
    cmd = [sys.executable, "-m", "dbsl.run", *DISTRIBUTED, "executor=distributed", "schedule.epochs=200",
           "schedule.cycle_ends=[]", "optim.lr_milestones=[100]", f"results_dir={tmp_path}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in proc.stdout:  # wait until it trains
        if "epoch 2/" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "tensorpipe" not in out.lower() and "Traceback" not in out, out
    assert len([line for line in out.splitlines() if line.startswith("interrupted (Ctrl-C)")]) == 1, out
