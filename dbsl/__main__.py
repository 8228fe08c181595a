"""python -m dbsl COMMAND [ARGS ...]: the ``dbsl`` command (:mod:`dbsl.cli.main`)."""

if __name__ == "__main__":  # a multiprocessing child imports this module again, as __mp_main__: nothing to do then
    from .cli.main import main

    raise SystemExit(main())
