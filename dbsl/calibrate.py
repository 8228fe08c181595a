"""python -m dbsl.calibrate <hydra overrides> [--quick] [--name NAME]: the command ``dbsl calibrate``
(:mod:`dbsl.cli.calibrate`; the calibration itself is :mod:`dbsl.calibration`)."""

if __name__ == "__main__":
    from .cli.calibrate import main

    raise SystemExit(main())
