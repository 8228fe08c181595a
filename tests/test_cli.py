"""The commands: ``dbsl COMMAND`` and every ``python -m dbsl.<command>`` form, the console script, the standard-library
path of ``dbsl data``; and the Hydra app end to end: a default run, the four schemes in one multirun, progress
output."""
from __future__ import annotations

import fcntl
import importlib
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import tomllib
from pathlib import Path

import pytest

from dbsl.cli.main import COMMANDS
from dbsl.record import METRIC_COLUMNS, find_runs, read_metric_rows

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# every documented `python -m` form: the commands' older names (kept as shims onto dbsl.cli), and the calibration
# package's own
PYTHON_M_FORMS = sorted({form for _, form, _ in COMMANDS.values() if form} | {"dbsl.calibration"})


def _python(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def test_dbsl_help_lists_every_command_with_one_line():
    proc = _python("-m", "dbsl", "--help")
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    for name, (_, _, description) in COMMANDS.items():
        assert any(line.split() and line.split()[0] == name and description in line for line in lines), name
    assert {"run", "plan", "forecast", "sweep", "report", "posthoc", "tune", "tune-dashboard", "calibrate",
            "gpu-check", "sync", "dashboard", "data"} == set(COMMANDS)
    nothing, unknown = _python("-m", "dbsl"), _python("-m", "dbsl", "plna")
    assert nothing.returncode == 2 and "usage: dbsl COMMAND" in nothing.stderr
    assert unknown.returncode == 2 and "'plna' is not a dbsl command" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_every_command_form_answers_help():
    """`python -m dbsl.<x> --help` for every documented form, and `dbsl run --help` (Hydra's help): real processes,
    started together (each imports torch: seconds)."""
    commands = [["-m", form, "--help"] for form in PYTHON_M_FORMS] + [["-m", "dbsl", "run", "--help"]]
    procs = [subprocess.Popen([sys.executable, *c], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for c in commands]
    for command, proc in zip(commands, procs):
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, (command, out, err)
        assert "usage:" in out or "powered by Hydra" in out, (command, out)  # argparse's help, or Hydra's
        assert "Traceback" not in err, (command, err)


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "run"])
def test_dbsl_passes_the_rest_of_the_line_to_the_command(name, capsys):
    from dbsl.cli.main import main

    try:
        code = main([name, "--help"])
    except SystemExit as done:  # argparse's --help
        code = done.code
    assert code in (0, None)
    assert "usage:" in capsys.readouterr().out


def test_dbsl_plan_prints_what_python_m_dbsl_plan_prints():
    args = ["experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=3"]
    new, old = _python("-m", "dbsl", "plan", *args), _python("-m", "dbsl.plan", *args)
    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert new.stdout == old.stdout and "n_S=3" in new.stdout
    as_json = _python("-m", "dbsl", "plan", "--json", *args)
    assert json.loads(as_json.stdout)["num_small"] == 3
    bad = _python("-m", "dbsl", "plan", "experiment=nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: experiment=nope")


def test_the_console_script_is_dbsl_and_resolves_to_the_dispatcher():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"dbsl": "dbsl.cli.main:main"}  # the old dbsl-* scripts are gone
    module, _, function = scripts["dbsl"].partition(":")
    entry = getattr(importlib.import_module(module), function)
    assert callable(entry)
    assert entry(["--help"]) == 0


def test_dbsl_data_needs_only_the_standard_library():
    """`just data` runs `python3 -m dbsl data` with the system's python3 before `just setup`: nothing on that path
    (dbsl, the dispatcher, the command, dbsl.data.fashion_mnist) may import a third-party package."""
    probe = ("import sys\nfrom dbsl.cli.main import main\nmain(['--help'])\n"
             "try:\n    main(['data', '--help'])\nexcept SystemExit:\n    pass\n"
             "assert main(['data', '--bogus']) == 2\n"  # the error path too
             "import dbsl.data.fashion_mnist\n"
             "std = set(sys.stdlib_module_names)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} - std - {'dbsl', '__main__'}))\n")
    proc = _python("-c", probe)
    assert proc.returncode == 0, proc.stderr
    outside = [m for m in eval(proc.stdout.strip().splitlines()[-1]) if not m.startswith("_")]
    assert outside == [], outside


def test_default_run_on_synthetic_data_writes_a_complete_record(run_cli, tmp_path):
    proc = run_cli("dataset=synthetic", "dataset.synthetic_train=1024", "dataset.synthetic_test=128")
    (run_dir,) = find_runs(tmp_path / "results")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["scheme"] == "baseline"
    for name in ("config.yaml", "plan.json", "metrics.csv", "summary.json"):
        assert (run_dir / name).is_file()
    table = read_metric_rows(run_dir / "metrics.csv")
    assert len(table) == summary["total_commits"] == 32
    assert list(table[0]) == list(METRIC_COLUMNS)
    assert summary["final"]["commit"] == 31 and 0 < summary["final"]["test_top1"] <= 1
    assert summary["best"]["test_top1"] >= summary["final"]["test_top1"]
    assert summary["versions"]["torch"] and "git_commit" in summary
    # not a terminal: no progress bar, one log line per epoch
    log = proc.stdout + proc.stderr
    assert sum("epoch " in line and "/8 " in line for line in log.splitlines()) == 8
    assert "commit/s" not in log


def test_four_schemes_in_one_multirun(run_cli, tmp_path):
    run_cli("-m", "experiment=smoke", "scheme=baseline,dbsl,cpl,hybrid", "sweep_name=schemes", "model.width=2",
            "dataset.synthetic_train=512", "dataset.synthetic_test=64")
    runs = find_runs(tmp_path / "results" / "sweeps" / "schemes")
    summaries = {json.loads((r / "summary.json").read_text())["scheme"]: r for r in runs}
    assert sorted(summaries) == ["baseline", "cpl", "dbsl", "hybrid"]
    for scheme, run_dir in summaries.items():
        summary = json.loads((run_dir / "summary.json").read_text())
        plan = json.loads((run_dir / "plan.json").read_text())
        assert summary["status"] == "completed"
        assert len(read_metric_rows(run_dir / "metrics.csv")) == 24
        assert (plan["num_small"] > 0) == (scheme in ("dbsl", "hybrid"))
        assert (len({p["resolution"] for p in plan["phases"]}) > 1) == (scheme in ("cpl", "hybrid"))


def test_progress_bar_on_a_terminal(tmp_path):
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    cmd = [sys.executable, "-m", "dbsl.run", "experiment=smoke", "schedule.epochs=2", "optim.lr_milestones=[1]",
           "schedule.cycle_ends=[]", f"results_dir={tmp_path}"]
    proc = subprocess.Popen(cmd, stdin=child, stdout=child, stderr=child, cwd=tmp_path, close_fds=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    os.close(child)
    out = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    assert proc.wait(timeout=120) == 0, out.decode(errors="replace")
    text = out.decode(errors="replace")
    assert "8/8 [" in text and "commit" in text, text  # tqdm's bar, at its end
    assert "epoch 2/2" in text


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "run"])
def test_a_wrong_option_is_one_error_line_naming_it(name, capsys):
    """argparse's own answer is a usage block and an error line; every command gives one line and status 2."""
    from dbsl.cli.main import main

    try:
        code = main([name, "--no-such-option", "x"])
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    assert code == 2, (name, out, err)
    [line] = err.splitlines()
    assert line.startswith("error: ") and "--no-such-option" in line, line
