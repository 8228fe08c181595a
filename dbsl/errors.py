"""Errors a user can fix, and how every command-line tool reports them: one ``error:`` line, no traceback.

:class:`UserError` is bad input (a config value, a path, a dataset, a damaged run record, an impossible budget);
its message names the key or file and the fix. The tools exit with status 2 on one, and with status 1 on a run
that :class:`Diverged` or met a :class:`RunFailure` (a dead worker), or when what a command needs is
:class:`Unavailable` (no W&B API key, a server that does not answer). Anything else is an internal error and keeps
its traceback. ``--debug`` (or Hydra's ``HYDRA_FULL_ERROR=1``) shows the traceback of user errors too.

Hydra's own composition errors (an unknown preset or key, a value of the wrong type) count as user errors; they
are reworded into one line by :func:`one_line`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from typing import Iterator, List, Sequence

DEBUG_FLAG = "--debug"
INTERRUPTED_EXIT = 130  # the shell's code for a process ended by SIGINT


class UserError(ValueError):
    """Bad input; the message names the key or file and the fix."""

    exit_code = 2


class RecordError(UserError):
    """A run record that cannot be trusted (a damaged summary.json or checkpoint.pt, rows missing from
    metrics.csv); the message names the file and the way out."""


class Diverged(RuntimeError):
    """The training loss (or the test loss) became NaN or infinite: the run ends with status ``diverged``."""

    exit_code = 1


class Unavailable(RuntimeError):
    """What a command needs is not there now, through no fault of its input (no W&B API key, a server that does
    not answer, a port taken): one ``error:`` line that says what to do, status 1."""

    exit_code = 1


class RunFailure(RuntimeError):
    """A run that started and could not go on for a reason its message names (a worker of the distributed executor
    died, failed or stopped answering): one ``error:`` line with the way on, status 1; the record says failed and
    keeps what ran."""

    exit_code = 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a wrong option reported as one ``error:`` line (status 2) instead of a usage block."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


_debug = False  # set once by the command-line entry point (--debug or HYDRA_FULL_ERROR=1)


def debug_requested(argv: Sequence[str]) -> tuple[bool, List[str]]:
    """(whether the user asked for tracebacks, argv without ``--debug``)."""
    rest = [a for a in argv if a != DEBUG_FLAG]
    full = os.environ.get("HYDRA_FULL_ERROR", "").strip().lower() in ("1", "true", "yes")
    return len(rest) != len(argv) or full, rest


def set_debug(debug: bool) -> None:
    global _debug
    _debug = debug


def _hydra_user_errors() -> tuple:
    from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException
    from omegaconf.errors import OmegaConfBaseException

    return ConfigCompositionException, OverrideParseException, SearchPathException, OmegaConfBaseException


def user_error(err: BaseException) -> BaseException | None:
    """The user error behind ``err`` (itself, or the cause of an error Hydra or OmegaConf wrapped it in), or None
    when ``err`` is an internal error."""
    from omegaconf.errors import OmegaConfBaseException

    seen, depth = err, 0
    while seen is not None and depth < 10:
        if isinstance(seen, (UserError, Diverged, RunFailure, Unavailable)):
            return seen
        # OmegaConf hides the cause (e.g. a resolver's UserError) as the context of its own error
        seen = seen.__cause__ or (seen.__context__ if isinstance(seen, OmegaConfBaseException) else None)
        depth += 1
    return err if isinstance(err, _hydra_user_errors()) else None


NOISE = ("full_key:", "object_type=", "reference_type=", "To append to your config use", "Config search path",
         "provider=", "Set the environment variable HYDRA_FULL_ERROR")


def one_line(err: BaseException) -> str:
    """The error's message as one line (Hydra's multi-line messages reworded, their search-path lists dropped)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and "/" in err.missing_cfg_file:
        group, name = err.missing_cfg_file.rsplit("/", 1)
        options = ", ".join(err.options or []) or "none"
        return f"{group}={name}: there is no such {group}; choose one of {options}"
    if isinstance(err, OverrideParseException):
        return f"cannot parse the override {err.override!r} ({_join(err.message)}); write it as key=value"
    text = _join(str(err))
    cause = err.__cause__
    if cause is not None and str(cause) and _join(str(cause)) not in text:
        text = f"{text}: {_join(str(cause))}"
    if isinstance(err, ConfigCompositionException) and re.search(r"Key '[^']+' (is )?not in", text):
        text += " (check its spelling: `python -m dbsl.run --cfg job` prints every key)"
    return text


def _join(message: str) -> str:
    lines = [line.strip() for line in message.splitlines()]
    kept = [line.rstrip(".") for line in lines if line and not line.startswith(NOISE)]
    return "; ".join(kept)


@contextlib.contextmanager
def reported(interrupted: str) -> Iterator[None]:
    """Turn a user error into one ``error:`` line on stderr and ``SystemExit`` (its ``exit_code``: 2 for bad input,
    1 otherwise; a :class:`RunFailure`'s line ends with ``interrupted``, the way on), and Ctrl-C into the one line
    ``interrupted``; internal errors (and everything, with --debug) pass unchanged."""
    try:
        yield
    except KeyboardInterrupt:
        if _debug:
            raise
        print(f"interrupted (Ctrl-C): {interrupted}", file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except Exception as err:  # noqa: BLE001 - re-raised unless it is a user error
        found = None if _debug else user_error(err)
        if found is None:
            raise
        way_on = f" ({interrupted})" if isinstance(found, RunFailure) else ""
        print(f"error: {one_line(found)}{way_on}", file=sys.stderr, flush=True)
        raise SystemExit(getattr(found, "exit_code", 2)) from None


def cli_main(main, argv: Sequence[str] | None, interrupted: str) -> int:
    """Run an argparse tool's ``main(argv)`` with ``--debug`` handled and errors :func:`reported`; its exit code."""
    debug, rest = debug_requested(list(sys.argv[1:] if argv is None else argv))
    set_debug(debug)
    try:
        with reported(interrupted):
            return main(rest)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
