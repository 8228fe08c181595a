"""``python -m dbsl.calibration`` (also ``python -m dbsl.calibrate``): see :mod:`dbsl.calibration.cli`."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
