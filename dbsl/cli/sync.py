"""dbsl sync [ROOT ...] [--dry-run] (``just sync``): upload the offline W&B runs found under the run records (see
:mod:`dbsl.wandb_sync`)."""
from __future__ import annotations

from typing import Sequence

from .. import wandb_sync as library
from ..errors import ArgumentParser, cli_main


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="dbsl sync", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", default=["results"], help="folders holding run records")
    parser.add_argument("--dry-run", action="store_true", help="list the runs that would be uploaded")
    args = parser.parse_args(argv)
    return library.sync(args.roots, args.dry_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input: one error line, status 2; a service or port not there: one line, status 1."""
    return cli_main(_main, argv, "the offline runs stay as they are")
