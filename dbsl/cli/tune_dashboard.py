"""dbsl tune-dashboard STUDY [--port 8080] (also python -m dbsl.tune_dashboard): watch a tuning study live in
optuna-dashboard (see :mod:`dbsl.tune_dashboard`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import tune_dashboard as library
from ..errors import ArgumentParser, cli_main


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="python -m dbsl.tune_dashboard", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("study", help="the study's name (dbsl tune --study; default there <experiment>_<scheme>)")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0: a free one)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="results_dir of the study")
    args = parser.parse_args(argv)
    return library.serve(args.study, args.port, args.results_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input: one error line, status 2; a service or port not there: one line, status 1."""
    return cli_main(_main, argv, "the study is unchanged")
