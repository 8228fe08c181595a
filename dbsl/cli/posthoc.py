"""dbsl posthoc RUN_DIR|FOLDER ... [--force] (also python -m dbsl.posthoc): test completed runs' final models again
(see :mod:`dbsl.posthoc`)."""
from __future__ import annotations

import logging
from typing import Sequence

from .. import posthoc as library
from ..errors import ArgumentParser, cli_main
from ..machine import prepare


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="python -m dbsl.posthoc", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="run folders, or folders holding runs")
    parser.add_argument("--force", action="store_true", help="measure again where posthoc.json exists")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepare(args.threads)
    library.check_runs(args.paths, args.force)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(_main, argv, "nothing was lost; run the same command again")
