"""python -m dbsl.sinks.sync [ROOT ...] [--dry-run]: upload the offline W&B runs found under the run records.

Finds every ``wandb/offline-run-*`` directory under ROOT (default: results) that ``wandb sync`` has not marked as
synced, and hands them to ``wandb sync``. Without an API key it says so and stops instead of prompting.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from .wandb import REACH_TIMEOUT, has_api_key, server_answers, server_host


def pending_runs(roots: Sequence[Path | str]) -> list[Path]:
    """Offline W&B run directories under ``roots`` without a ``*.synced`` marker, oldest first."""
    found = []
    for root in roots:
        for run in Path(root).rglob("offline-run-*"):
            if run.is_dir() and run.parent.name == "wandb" and not any(run.glob("*.synced")):
                found.append(run)
    return sorted(set(found), key=lambda p: p.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dbsl.sinks.sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", default=["results"], help="folders holding run records")
    parser.add_argument("--dry-run", action="store_true", help="list the runs that would be uploaded")
    args = parser.parse_args(argv)
    runs = pending_runs(args.roots)
    for run in runs:
        print(run)
    print(f"{len(runs)} offline W&B run(s) to upload", file=sys.stderr)
    if args.dry_run or not runs:
        return 0
    if not has_api_key():
        print("error: no W&B API key: run `wandb login` (or set WANDB_API_KEY), then `just sync` again",
              file=sys.stderr)
        return 1
    if not server_answers():
        host, port = server_host()
        print(f"error: the W&B server {host}:{port} does not answer within {REACH_TIMEOUT:g} s (no network?); the "
              "offline runs stay as they are: run `just sync` again when it answers", file=sys.stderr)
        return 1
    return subprocess.call([sys.executable, "-m", "wandb", "sync", *map(str, runs)])


if __name__ == "__main__":
    raise SystemExit(main())
