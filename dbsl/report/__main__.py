"""python -m dbsl.report: the ``dbsl report`` command (:mod:`dbsl.cli.report`, which parses the arguments)."""

if __name__ == "__main__":
    from ..cli.report import main

    raise SystemExit(main())
