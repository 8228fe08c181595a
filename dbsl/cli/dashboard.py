"""dbsl dashboard GROUP [--save] (``just dashboard``): the W&B workspace of one sweep group (see
:mod:`dbsl.wandb_workspace`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import wandb_workspace as library
from ..errors import ArgumentParser, cli_main


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="dbsl dashboard", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("group", help="the W&B group: a sweep's name (e.g. smoke) or logger.group")
    parser.add_argument("--project", default="dbsl", help="W&B project (logger.project; default dbsl)")
    parser.add_argument("--entity", help="W&B entity (default: your default entity once online)")
    parser.add_argument("--records", nargs="*", type=Path,
                        help="folders of the group's run records (default results/sweeps/GROUP or "
                             "results/tune/GROUP/runs)")
    parser.add_argument("--workers", type=int, help="workers per run (default: from the records, else 4)")
    parser.add_argument("--out", type=Path, help="where to write the spec (default results/dashboards/GROUP.json)")
    parser.add_argument("--save", action="store_true", help="create the workspace in W&B (needs an API key)")
    args = parser.parse_args(argv)
    return library.write_workspace(args.group, args.project, args.entity, args.records, args.workers, args.out,
                                   args.save)


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input: one error line, status 2; a service or port not there: one line, status 1."""
    return cli_main(_main, argv, "nothing was written")
