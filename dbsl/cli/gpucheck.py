"""dbsl gpu-check [--out DIR] [--only NAME,...] [--keep-runs] [--cpu] (also python -m dbsl.gpucheck): check dbsl's
CUDA paths on this machine (see :mod:`dbsl.gpucheck`)."""
from __future__ import annotations

from typing import Sequence

from .. import gpucheck as library
from ..errors import ArgumentParser, cli_main


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(prog="python -m dbsl.gpucheck", description=library.__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/gpu_check", help="folder of gpu_check.json and gpu_check.md")
    parser.add_argument("--only", default="", help="comma-separated checks to run (default: all)")
    parser.add_argument("--keep-runs", action="store_true", help="keep the check's run records under <out>/runs")
    parser.add_argument("--cpu", action="store_true", help="run the checks on the CPU (tests the check itself)")
    args = parser.parse_args(argv)
    return library.gpu_check(args.out, args.only, args.keep_runs, args.cpu)


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input: one error line, status 2; a service or port not there: one line, status 1."""
    return cli_main(_main, argv, "run the same command again")
