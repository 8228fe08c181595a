"""Where a report goes, safely: ``python -m dbsl.report`` removes nothing it did not write and hides nothing.

It writes into a new folder, or one that is empty or holds only an earlier report of its own, which its marker file
(``.dbsl-report.json``, the list of files it wrote) proves. It refuses an ``--out`` that is, or contains, an input
folder (the report would replace the run records), a file, and a folder holding anything else, unless ``--force``:
then it writes its files into that folder, replacing files of the same name and its own earlier ones, and leaves
every other file where it is. The finished report replaces an earlier one in one rename, so a crash leaves the
earlier report as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Sequence

from ..paths import check_output_dir
from .collect import ReportError

MARKER = ".dbsl-report.json"


def check_out(out: Path, roots: Sequence[Path | str], force: bool = False) -> None:
    """Refuse an unsafe ``--out`` before any work (a :class:`ReportError` or ConfigError naming it and the fix)."""
    target = out.resolve()
    for root in roots:
        folder = Path(root).resolve()
        if folder == target or target in folder.parents:
            relation = "is" if folder == target else "contains"
            raise ReportError(f"--out {out}: it {relation} the input folder {root}, whose run records the report would "
                              "replace; choose another --out, e.g. reports/latest")
    check_output_dir(out, "--out", "reports/latest")  # a file in the way, or no permission to write
    foreign = foreign_entries(out) if out.is_dir() else []
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ReportError(f"--out {out}: the folder holds files dbsl.report did not write ({shown}); choose a new or "
                          "empty --out, or pass --force to write the report into it (files of the same name are "
                          "replaced, nothing else is touched)")


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


def install(work: Path, out: Path, force: bool = False) -> None:
    """Put the finished report ``work`` (a temporary folder beside ``out``) at ``out``, as :func:`check_out` allowed."""
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
