"""The results table of a sweep: one row per run (status, label, best and final top-1, modelled time, error)."""
from __future__ import annotations

from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

from ..identity import identity_overrides

OUTCOMES = ("completed", "skipped", "failed", "cancelled", "diverged")
STYLES = {"completed": "green", "skipped": "cyan", "failed": "bold red", "cancelled": "yellow",
          "diverged": "bold magenta"}


def count_outcomes(outcomes: Iterable[dict]) -> dict:
    counts = {status: 0 for status in OUTCOMES}
    for outcome in outcomes:
        counts[outcome["status"]] += 1
    return counts


def run_labels(outcomes: list[dict]) -> list[str]:
    """Short names: the overrides that tell the runs apart (the directory names can be long or hashed)."""
    sets = [set(identity_overrides(outcome["overrides"])) for outcome in outcomes]
    common = set.intersection(*sets) if len(sets) > 1 else set()
    return [" ".join(sorted(s - common)) or outcome["run"] for s, outcome in zip(sets, outcomes)]


def print_outcomes(title: str, outcomes: list[dict]) -> dict:
    """Print the per-run table and a one-line count; return the counts."""
    table = Table(title=title)
    for column in ("status", "run", "best top-1", "final top-1", "modelled s", "error"):
        table.add_column(column, overflow="fold")
    for o, label in zip(outcomes, run_labels(outcomes)):
        table.add_row(f"[{STYLES[o['status']]}]{o['status']}[/]", label, _fmt(o["best_test_top1"]),
                      _fmt(o["final_test_top1"]), _fmt(o["modelled_time"], ".1f"), (o.get("error") or "")[:160])
    counts = count_outcomes(outcomes)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return counts


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


