"""Upload the offline W&B runs found under the run records: ``dbsl sync [ROOT ...] [--dry-run]``
(:mod:`dbsl.cli.sync`, ``just sync``).

Finds every ``wandb/offline-run-*`` directory under ROOT (default: results) that ``wandb sync`` has not marked as
synced, and hands them to ``wandb sync``. Without an API key it says so and stops instead of prompting.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

from .errors import Unavailable, UserError
from .sinks.wandb import REACH_TIMEOUT, has_api_key, server_answers, server_host


def pending_runs(roots: Sequence[Path | str]) -> list[Path]:
    """Offline W&B run directories under ``roots`` without a ``*.synced`` marker, oldest first. A root that is not
    a folder is a :class:`~dbsl.errors.UserError` (a mistyped path would otherwise read as "nothing to upload")."""
    if missing := [str(r) for r in roots if not Path(r).is_dir()]:
        raise UserError(f"{', '.join(missing)}: no such folder; pass the folder(s) holding run records "
                        "(default: results)")
    found = []
    for root in roots:
        for run in Path(root).rglob("offline-run-*"):
            if run.is_dir() and run.parent.name == "wandb" and not any(run.glob("*.synced")):
                found.append(run)
    return sorted(set(found), key=lambda p: p.name)


def sync(roots: Sequence[Path | str] = ("results",), dry_run: bool = False) -> int:
    """List the offline runs under ``roots`` and (unless ``dry_run``) hand them to ``wandb sync``; its exit status.
    No API key, or a server that does not answer, is :class:`~dbsl.errors.Unavailable`."""
    runs = pending_runs(roots)
    for run in runs:
        print(run)
    print(f"{len(runs)} offline W&B run(s) to upload", file=sys.stderr)
    if dry_run or not runs:
        return 0
    if not has_api_key():
        raise Unavailable("no W&B API key: run `wandb login` (or set WANDB_API_KEY), then `just sync` again")
    if not server_answers():
        host, port = server_host()
        raise Unavailable(f"the W&B server {host}:{port} does not answer within {REACH_TIMEOUT:g} s (no network?); "
                          "the offline runs stay as they are: run `just sync` again when it answers")
    return subprocess.call([sys.executable, "-m", "wandb", "sync", *map(str, runs)])

