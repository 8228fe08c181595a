"""dbsl data [--to DIR] (``just data``, which runs ``python3 -m dbsl data``): get Fashion-MNIST, the Debian package
dataset-fashion-mnist's files (see :mod:`dbsl.data.fashion_mnist`).

Standard library only, here and on the way to it (``dbsl/__init__.py``, :mod:`dbsl.cli.main`, :mod:`dbsl.data`'s lazy
``__init__``): the system's python3 runs it before ``just setup`` has installed dbsl's dependencies.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from ..data import fashion_mnist


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="just data", description=fashion_mnist.__doc__.split("\n\n")[0])
    parser.add_argument("--to", type=Path, help=f"fetch the package's files into DIR as the current user, even as "
                                                f"root (default without root: {fashion_mnist.user_dir()})")
    args = parser.parse_args(argv)
    return fashion_mnist.get_files(args.to)
