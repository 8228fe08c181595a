"""dbsl's commands: one thin module per command, each parsing its arguments and calling library code.

``dbsl COMMAND ...`` (:mod:`.main`, also ``python -m dbsl COMMAND ...``) dispatches to them; each older form
``python -m dbsl.<command>`` is a shim onto the same module. Nothing in the library imports this package.

This package imports nothing itself, and :mod:`.main` and :mod:`.data` only the standard library: ``dbsl data``
(``just data``) runs with the system's python3 before dbsl's dependencies are installed.
"""
