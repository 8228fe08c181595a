"""Speed benchmarks of dbsl (never run inside tests at their real sizes): ``just bench`` runs ``benchmarks/run.py``.

One module per benchmark, each with ``NAME``, ``TITLE``, ``SIZES`` (full / quick / tiny) and ``run(size) -> dict``;
``timing`` holds the shared side-by-side timing helper, ``common`` the shared setup, ``report`` the output files.
"""
