"""Where a report goes, safely: ``python -m dbsl.report`` removes nothing it did not write and hides nothing.

It writes into a new folder, an empty one, or one that holds an earlier report of its own, which its marker file
(``.dbsl-report.json``, the list of files it wrote) proves. It refuses, with or without ``--force``: an empty
``--out`` (an unset shell variable), the current folder or one above it, a git repository, an ``--out`` that is or
contains an input folder (the report would replace the run records), a file, and any folder holding files without
the marker (a README.md there is somebody's). ``--force`` only lets it write into its own earlier report when
somebody has added files to it: it replaces its own and same-named files and leaves the added ones where they are.
The finished report replaces an earlier one in one rename, so a crash leaves the earlier report as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Sequence

from ..paths import alive, check_output_dir
from ..record import umask
from .collect import ReportError

MARKER = ".dbsl-report.json"
STAGING = ".dbsl-report-staging"  # inside a folder the report is still writing: proves the folder is its own


def staging_folder(out: Path) -> Path:
    """A new folder beside ``out`` to build the report in (modes as the umask gives new folders; mkdtemp's 0700
    would keep a shared results folder's readers out), marked as the report's own."""
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o777 & ~umask())
    (work / STAGING).write_text(f"{os.getpid()}\n")
    return work


def remove_stale_staging(out: Path) -> None:
    """Remove staging folders an earlier report left beside ``out`` when it was killed (only those that carry the
    staging marker, and whose process is gone)."""
    for folder in out.parent.glob(f".{out.name}.*"):
        marker = folder / STAGING
        try:
            pid = int(marker.read_text().strip())
        except (OSError, ValueError):
            continue  # not a staging folder of the report's: left alone
        if pid != os.getpid() and not alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def check_out(out: Path | str, roots: Sequence[Path | str], force: bool = False) -> None:
    """Refuse an unsafe ``--out`` before any work (a :class:`ReportError` or ConfigError naming it and the fix)."""
    if not str(out).strip() or str(out).strip() == ".":
        raise ReportError(f"--out {str(out)!r}: {'empty' if not str(out).strip() else 'the current folder'}; the "
                          "report goes into a folder of its own, e.g. --out reports/latest")
    out = Path(out)
    target = out.resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise ReportError(f"--out {out}: the current folder or one above it; the report goes into a folder of its "
                          "own, e.g. --out reports/latest")
    if (target / ".git").exists():
        raise ReportError(f"--out {out}: a git repository; the report goes into a folder of its own, e.g. --out "
                          f"{out / 'reports' / 'latest'}")
    for root in roots:
        folder = Path(root).resolve()
        if folder == target or target in folder.parents:
            relation = "is" if folder == target else "contains"
            raise ReportError(f"--out {out}: it {relation} the input folder {root}, whose run records the report would "
                              "replace; choose another --out, e.g. reports/latest")
    check_output_dir(out, "--out", "reports/latest")  # a file in the way, or no permission to write
    foreign = foreign_entries(out) if out.is_dir() else []
    if not foreign:
        return
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    if not (out / MARKER).is_file():
        raise ReportError(f"--out {out}: the folder holds files dbsl.report did not write ({shown}) and no earlier "
                          "report of its own; choose a new or empty --out (--force does not change this)")
    if not force:
        raise ReportError(f"--out {out}: files were added to this earlier report ({shown}); choose a new --out, or "
                          "pass --force to write the report into it (its own and same-named files are replaced, the "
                          "added ones stay)")


def written_by_report(folder: Path) -> List[str]:
    """The files (relative paths) an earlier report listed in ``folder``'s marker; [] without a readable marker."""
    try:
        files = json.loads((folder / MARKER).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str)]


def _entries(folder: Path) -> List[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def foreign_entries(folder: Path) -> List[str]:
    """Files and folders in ``folder`` that no report wrote (its marker does not list them)."""
    ours = set(written_by_report(folder)) | {MARKER}
    ours |= {parent.as_posix() for f in list(ours) for parent in Path(f).parents if parent != Path(".")}
    return [e for e in _entries(folder) if e not in ours]


def write_marker(folder: Path) -> None:
    files = [e for e in _entries(folder) if (folder / e).is_file()]
    (folder / MARKER).write_text(json.dumps({"written_by": "python -m dbsl.report", "files": files}, indent=1) + "\n")


def install(work: Path, out: Path | str, force: bool = False) -> None:
    """Put the finished report ``work`` (a temporary folder beside ``out``) at ``out``, as :func:`check_out` allowed."""
    out = Path(out)
    (work / STAGING).unlink()
    write_marker(work)
    if not out.exists():
        work.rename(out)
        return
    if not foreign_entries(out):  # empty, or only an earlier report: swap the folders, then drop the earlier report
        holder = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        out.rename(holder / out.name)
        work.rename(out)
        shutil.rmtree(holder)
        return
    if not force:  # something appeared since check_out
        raise ReportError(f"--out {out}: files dbsl.report did not write appeared in it; run again")
    earlier = set(written_by_report(out))
    for name in _entries(work):  # merge: replace our files and same-named ones, keep everything else
        source, target = work / name, out / name
        if source.is_dir():
            target.mkdir(exist_ok=True)
        else:
            os.replace(source, target)
    for name in earlier - set(written_by_report(out)):  # an earlier report's files this one no longer has
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(work)
