"""python -m dbsl.sweep NAME [overrides ...]: the command ``dbsl sweep`` (:mod:`dbsl.cli.sweep`)."""

if __name__ == "__main__":
    from ..cli.sweep import main

    raise SystemExit(main())
