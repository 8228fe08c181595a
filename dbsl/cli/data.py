"""dbsl data [--to DIR] (``just data``, which runs ``python3 -m dbsl data``): get Fashion-MNIST, the Debian package
dataset-fashion-mnist's files (see :mod:`dbsl.data.fashion_mnist`).

Standard library only, here and on the way to it (``dbsl/__init__.py``, :mod:`dbsl.cli.main`, :mod:`dbsl.data`'s lazy
``__init__``): the system's python3 runs it before ``just setup`` has installed dbsl's dependencies.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from ..data import fashion_mnist
from ..errors import ArgumentParser, UserError  # standard library only at import


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = ArgumentParser(prog="just data", description=fashion_mnist.__doc__.split("\n\n")[0])
    parser.add_argument("--to", type=Path, help=f"fetch the package's files into DIR as the current user, even as "
                                                f"root (default without root: {fashion_mnist.user_dir()})")
    try:  # one error line, as every command's (not cli_main's reporting: it may import Hydra for its checks)
        args = parser.parse_args(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return fashion_mnist.get_files(args.to)
