"""dbsl sync [ROOT ...] [--dry-run] (``just sync``): upload the offline W&B runs found under the run records (see
:mod:`dbsl.wandb_sync`)."""
from __future__ import annotations

import argparse
from typing import Sequence

from .. import wandb_sync as library


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dbsl sync", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", default=["results"], help="folders holding run records")
    parser.add_argument("--dry-run", action="store_true", help="list the runs that would be uploaded")
    args = parser.parse_args(argv)
    return library.sync(args.roots, args.dry_run)
