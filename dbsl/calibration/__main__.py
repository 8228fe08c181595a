"""``python -m dbsl.calibration`` (also ``python -m dbsl.calibrate``, ``dbsl calibrate``): :mod:`dbsl.cli.calibrate`."""

if __name__ == "__main__":
    from ..cli.calibrate import main

    raise SystemExit(main())
