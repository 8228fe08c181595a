"""python -m dbsl.run [-m] <overrides>: the Hydra app (one run, or a multirun with -m); the command lives in
:mod:`dbsl.cli.run` (``dbsl run``). ``main`` is the Hydra app itself, ``cli`` the command around it."""
from .cli.run import app as main, cli, task_overrides  # noqa: F401 - the names tests and scripts use

if __name__ == "__main__":
    cli()
