"""python -m dbsl.sweep NAME [overrides ...] (see :mod:`dbsl.sweep.cli`)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
