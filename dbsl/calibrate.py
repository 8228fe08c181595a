"""``python -m dbsl.calibrate``: the time-model calibration's command (it lives in :mod:`dbsl.calibration.cli`)."""
from .calibration.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
