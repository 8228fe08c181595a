"""python -m dbsl.forecast: the ``dbsl forecast`` command (:mod:`dbsl.cli.forecast`)."""

if __name__ == "__main__":
    from ..cli.forecast import main

    raise SystemExit(main())
