"""The published CPU-scale reproduction (issue 9): reports/fashion_mnist_cpu is rebuilt here from the run records
committed under results/sweeps/fashion_mnist_cpu, by the command the report states, and every table's CSV must come
out identical; the README quotes the report's headline table as committed."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd

from dbsl.report.__main__ import main

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "reports" / "fashion_mnist_cpu"
RECORDS = REPO / "results" / "sweeps" / "fashion_mnist_cpu"


def stated_command() -> list[str]:
    found = re.search(r"Rebuild it with `python -m dbsl\.report ([^`]+)`", (REPORT / "README.md").read_text())
    assert found, "the report does not state the command that rebuilds it"
    return shlex.split(found.group(1))


def test_the_report_is_rebuilt_by_its_command_with_the_same_numbers(tmp_path, monkeypatch):
    args = stated_command()
    assert args[args.index("--out") + 1] == "reports/fashion_mnist_cpu"
    monkeypatch.chdir(REPO)  # the command's paths are relative to the repository
    args[args.index("--out") + 1] = str(tmp_path / "rebuilt")
    assert main(args + ["--no-figures"]) == 0
    committed = sorted(p.name for p in (REPORT / "tables").glob("*.csv"))
    assert committed == sorted(p.name for p in (tmp_path / "rebuilt" / "tables").glob("*.csv"))
    for name in committed:
        assert (tmp_path / "rebuilt" / "tables" / name).read_text() == (REPORT / "tables" / name).read_text(), name


def test_the_sweep_is_complete_with_three_seeds_per_configuration():
    runs = pd.read_csv(REPORT / "tables" / "runs.csv")
    assert len(runs) == len(list(RECORDS.glob("*/summary.json"))) == 24
    assert (runs["status"] == "completed").all() and runs["included"].all()
    accuracy = pd.read_csv(REPORT / "tables" / "accuracy_time_cpu_fashion_mnist_fashion_mnist.csv")
    assert (accuracy["seeds"] == "0,1,2").all()
    assert sorted(zip(accuracy["scheme"], accuracy["num_small"])) == sorted(
        [("baseline", 0), ("cpl", 0)] + [(s, n) for s in ("dbsl", "hybrid") for n in (1, 2, 3)])


def test_the_readme_quotes_the_headline_table_as_committed():
    readme = (REPO / "README.md").read_text()
    assert "reports/fashion_mnist_cpu" in readme
    claims = (REPORT / "tables" / "claims_cpu_fashion_mnist_fashion_mnist.md").read_text().splitlines()
    rows = [line for line in claims if line.startswith("| ")]
    assert len(rows) == 1 + 8 - 1  # header + every scheme group but the baseline
    for line in rows:
        assert line in readme, line
