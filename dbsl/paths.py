"""Output folders are checked before any work: an empty path (say, from an unset shell variable), a file in the
way, a folder without write permission or one where no folder can be made stops the command with one line that
names the key and the fix. Names that become folders are checked too; and :func:`alive` says whether the process
that made a folder still runs."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from . import layout
from .config import ConfigError


def check_output_dir(path: Path | str, key: str, example: str = "results") -> Path:
    """``path`` as a folder dbsl may create or write into; a :class:`ConfigError` naming ``key`` otherwise."""
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{key}={text!r}: empty (an unset shell variable?); give a folder, e.g. {key}={example}")
    target = Path(text)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the nearest folder that exists: it must take the new ones
    if not existing.is_dir():
        raise ConfigError(f"{key}={text}: {existing} is a file, not a folder; move it away or choose another {key}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={text}: cannot write into {existing} (read-only or no permission); choose a "
                          f"writable {key}")
    try:  # permissions are not the whole story (/proc, a full or read-only file system): make a folder, remove it
        os.rmdir(tempfile.mkdtemp(prefix=".dbsl-probe.", dir=existing))
    except OSError as err:
        raise ConfigError(f"{key}={text}: cannot create folders in {existing} ({err.strerror}); choose a writable "
                          f"{key}") from None
    return target


NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.=,+-]*"


def check_name(name: str, key: str) -> str:
    """A study name or run label before it becomes a folder name: letters, digits and ``_ . = , + -``, not starting
    with a dot (no ``/``, ``..`` or hidden names), so that it cannot lead out of its folder."""
    if not re.fullmatch(NAME_PATTERN, name or "") or ".." in name:
        raise ConfigError(f"{key}={name!r}: not a usable name (letters, digits and _ . = , + - only, no '/' or "
                          f"'..'); e.g. {key}=my_study")
    return name


def results_subdir(results_dir: str, kind: str, name: str) -> str:
    """Hydra resolver ``${dbsl_output_dir:${results_dir},runs|sweeps,NAME}``: the checked run or sweep folder
    (where: :mod:`dbsl.layout`)."""
    check_output_dir(results_dir, "results_dir")
    return str(check_output_dir(layout.run_folder(results_dir, kind, name), "results_dir"))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
