"""dbsl COMMAND [ARGS ...]: every dbsl command behind one name (also ``python -m dbsl COMMAND ...``).

The rest of the command line goes to the command's own parser as it is: ``dbsl run -m scheme=baseline,dbsl`` is
``python -m dbsl.run -m scheme=baseline,dbsl``. A command's module is imported only when it runs, so ``dbsl --help``
and ``dbsl data`` need nothing beyond the standard library.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

# command -> (module in dbsl.cli, the older ``python -m`` form, one line)
COMMANDS = {
    "run": ("run", "dbsl.run", "one run, or a Hydra multirun with -m (Hydra overrides)"),
    "plan": ("plan", "dbsl.plan", "print a run's plan (phases, B_L, B_S, d_L, d_S, f) without training"),
    "forecast": ("forecast", "dbsl.forecast", "forecast a run's whole time before training (--report: the paper's "
                                              "time columns and the server's capacity)"),
    "sweep": ("sweep", "dbsl.sweep", "run a named sweep preset from sweeps/ (--list shows them)"),
    "report": ("report", "dbsl.report", "tables, figures and the paper's claims from run records"),
    "posthoc": ("posthoc", "dbsl.posthoc", "test completed runs' final models again (BatchNorm recalibration, "
                                            "train-set gap)"),
    "tune": ("tune", "dbsl.tune", "search n_S and k (or B_S/B_L) with Optuna"),
    "tune-dashboard": ("tune_dashboard", "dbsl.tune_dashboard", "watch a tuning study live in optuna-dashboard"),
    "calibrate": ("calibrate", "dbsl.calibrate", "measure this machine's time model and write a hardware profile"),
    "gpu-check": ("gpucheck", "dbsl.gpucheck", "check the CUDA paths on this machine"),
    "sync": ("sync", None, "upload the offline W&B runs found under the run records"),
    "dashboard": ("dashboard", None, "the W&B workspace of a sweep group (--save creates it)"),
    "data": ("data", None, "get Fashion-MNIST, the real data the CPU presets train on"),
}
ALIASES = {"gpucheck": "gpu-check", "tune_dashboard": "tune-dashboard"}  # the python -m spellings


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:{width}}  {line}" for name, (_, _, line) in COMMANDS.items()]
    return ("usage: dbsl COMMAND [ARGS ...]   (also: python -m dbsl COMMAND [ARGS ...])\n\n"
            "Hybrid dual-batch and cyclic progressive learning on a parameter server: reproduce, sweep, tune, report.\n"
            "\ncommands:\n" + "\n".join(lines) + "\n\n"
            "`dbsl COMMAND --help` shows a command's options (run's is Hydra's help).\n")


def command_module(name: str):
    """The module of command ``name`` (dbsl.cli.<module>), imported now."""
    module, _, _ = COMMANDS[ALIASES.get(name, name)]
    return importlib.import_module(f"{__package__}.{module}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from .. import __version__

        print(f"dbsl {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if ALIASES.get(name, name) not in COMMANDS:
        print(f"error: {name!r} is not a dbsl command; the commands are {', '.join(COMMANDS)} (see dbsl --help)",
              file=sys.stderr)
        return 2
    return command_module(name).main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
