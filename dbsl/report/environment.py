"""Where the runs ran: the software and machine (summary.json ``versions`` and, in newer records, ``environment``),
the torch threads (config.yaml ``train.threads``) and the git commit of the code, one row per distinct combination."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ..record import commit_ranges
from .render import Table


def _flat(prefix: str, tree) -> dict:
    if not isinstance(tree, dict):
        return {}
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(f"{prefix}{k}.", v))
        else:
            out[f"{prefix}{k}"] = ", ".join(map(str, v)) if isinstance(v, list) else v
    return out


def run_environment(run_dir: str | Path) -> dict:
    """One run's environment facts (missing ones are simply absent)."""
    row = {}
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return row
    if not isinstance(summary, dict):
        return row
    row["git commit"] = (summary.get("git_commit") or "not recorded")
    versions = summary.get("versions") or {}
    for key in ("torch", "python", "dbsl", "platform"):
        if key in versions:
            row[key] = versions[key]
    row.update(_flat("", summary.get("environment")))
    try:
        config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
        threads = ((config.get("train") or {}).get("threads"))
        if threads is not None and "threads" not in row:
            row["train.threads"] = "0 (torch's default)" if threads == 0 else threads
        row["executor"] = (config.get("executor") or {}).get("name", summary.get("executor"))
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    row.setdefault("measured clock", summary.get("measured_clock") or "none (modelled only)")
    return row


def _seeds(seeds: pd.Series) -> str:
    known = sorted({int(s) for s in seeds if pd.notna(s)})
    return commit_ranges(known) if known else "not recorded"


def environment_table(runs: pd.DataFrame) -> Table | None:
    """The environments of the included runs, one row per distinct combination, with how many runs, which schemes
    and which seeds ran there."""
    included = runs[runs["included"]]
    rows = []
    for r in included.itertuples():
        env = run_environment(r.run_dir)
        if env:
            rows.append({**env, "_scheme": r.scheme, "_seed": r.seed})
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    keys = [c for c in frame.columns if c not in ("_scheme", "_seed")]
    frame[keys] = frame[keys].astype(object).where(frame[keys].notna(), "")
    frame[keys] = frame[keys].astype(str)
    grouped = frame.groupby(keys, sort=True, dropna=False)
    data = grouped.size().rename("runs").reset_index()
    data["schemes"] = grouped["_scheme"].agg(lambda s: ", ".join(sorted(set(map(str, s))))).to_numpy()
    data["seeds"] = grouped["_seed"].agg(_seeds).to_numpy()
    order = ["runs", "schemes", "seeds", "git commit"] + [k for k in keys if k != "git commit"]
    data = data[order]
    display = data.copy()
    display["git commit"] = display["git commit"].map(lambda c: c[:12] if len(c) == 40 else c)
    notes = ["From each run's summary.json (versions; environment where recorded) and config.yaml (train.threads; "
             "0 leaves torch's default, which OMP_NUM_THREADS sets and older records do not keep). The git commit "
             "is the code the run came from (the full hash is in the CSV); "
             "'dirty' working trees are not detected."]
    return Table("environment", "Environment and code of the runs", data, display, notes)
