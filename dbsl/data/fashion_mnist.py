"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist``: where its files are, whether they are the
package's, and how to get them with or without root (``just data``).

Where dbsl looks for the package's four gzipped IDX files, in order:

1. ``$DBSL_FASHION_MNIST_DIR`` if set: your own files (any IDX files of that layout, not checked against the package);
2. ``/usr/share/datasets/fashion-mnist``, where ``apt-get install dataset-fashion-mnist`` (root) puts them;
3. ``$XDG_CACHE_HOME/dbsl/fashion-mnist`` (default ``~/.cache/dbsl/fashion-mnist``), where ``just data`` puts them
   without root.

The files in 2 and 3 must have the package's sizes and SHA-256 (``PACKAGE_FILES``); a folder whose files do not is
passed over, and if no folder has good files the error names the bad file.

``dbsl data [--to DIR]`` (:mod:`dbsl.cli.data`; ``just data`` runs ``python3 -m dbsl data`` from the repository, and
this module, like that command's path, needs only the standard library, so any python3 runs it before dbsl is
installed): does nothing when good files are found; as root installs the package; otherwise
downloads the same package as the user (``apt-get download``, with a private package list when the system's cannot
serve it), unpacks it with ``dpkg -x`` in a temporary folder, checks the files and moves them into the user folder
(or ``--to DIR``); if that fails it prints the one command that works.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

PACKAGE = "dataset-fashion-mnist"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
ENV = "DBSL_FASHION_MNIST_DIR"
# The four files dataset-fashion-mnist 0.0~git20200523.55506a9-1 installs into SYSTEM_DIR: (bytes, SHA-256), as
# measured on the installed package
PACKAGE_FILES = {
    "train-images-idx3-ubyte.gz": (26421856, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
    "train-labels-idx1-ubyte.gz": (29491, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
    "t10k-images-idx3-ubyte.gz": (4422079, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
    "t10k-labels-idx1-ubyte.gz": (5125, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
}
ROOT_COMMAND = f"sudo apt-get install {PACKAGE}"  # the one command that works when fetching as the user does not


def user_dir() -> Path:
    """Where ``just data`` puts the package's files without root."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "dbsl" / "fashion-mnist"


def candidate_dirs() -> List[Tuple[Path, bool]]:
    """(folder, checked against the package) in the order dbsl looks."""
    if os.environ.get(ENV):
        return [(Path(os.environ[ENV]), False)]
    return [(Path(SYSTEM_DIR), True), (user_dir(), True)]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_problem(folder: Path) -> Optional[str]:
    """Why the package's files in ``folder`` are not the package's (one line naming the file), or None."""
    for name, (size, digest) in PACKAGE_FILES.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        actual = path.stat().st_size
        if actual != size:
            return f"{path} has {actual} bytes, the package's has {size} (truncated or another file)"
        if sha256(path) != digest:
            return f"{path} has the package's size but not its SHA-256 {digest[:16]}... (corrupt)"
    return None


def locate(names: Sequence[str] = tuple(PACKAGE_FILES)) -> Tuple[Optional[Path], Optional[str]]:
    """(the first folder holding good files ``names``, None) or (None, why not: the first bad file, or None when no
    folder holds them at all)."""
    problem = None
    for folder, checked in candidate_dirs():
        if not all((folder / name).is_file() for name in names):
            continue
        bad = file_problem(folder) if checked else None
        if bad is None:
            return folder, None
        problem = problem or bad
    return None, problem


def searched() -> str:
    return ", ".join(str(folder) for folder, _ in candidate_dirs())


# ------------------------------------------------------------------------------------------------- fetching
class FetchError(RuntimeError):
    """Fetching the package as the user failed; the message says which step."""


def _run(cmd: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    except OSError as err:  # no apt-get / dpkg on this system
        raise FetchError(f"cannot run {cmd[0]}: {err.strerror}") from None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def download(work: Path) -> Path:
    """``apt-get download`` the package into ``work`` as the current user; when the system's package lists cannot
    serve it (none yet on a fresh machine), with a private list fetched by ``apt-get update`` into ``work``."""
    proc = _run(["apt-get", "download", "-q", PACKAGE], work)
    if proc.returncode != 0:
        print(f"the system's package lists cannot serve {PACKAGE} ({_last_line(proc)}): fetching a private list "
              "(apt-get update as this user)", flush=True)
        lists, cache = work / "apt-lists", work / "apt-cache"
        (lists / "partial").mkdir(parents=True)
        (cache / "archives" / "partial").mkdir(parents=True)
        private = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}"]
        update = _run(["apt-get", "update", "-q", *private], work)
        if update.returncode != 0:
            raise FetchError(f"apt-get download failed ({_last_line(proc)}), and so did a private apt-get update "
                             f"({_last_line(update)})")
        proc = _run(["apt-get", "download", "-q", *private, PACKAGE], work)
        if proc.returncode != 0:
            raise FetchError(f"apt-get download {PACKAGE} failed: {_last_line(proc)}")
    debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise FetchError(f"apt-get download left no {PACKAGE}_*.deb in {work}")
    return debs[-1]


def fetch_as_user(dest: Path) -> None:
    """Download and unpack the package in a temporary folder, check its files, move them into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dbsl-fashion-mnist-", dir=dest.parent) as tmp:
        work = Path(tmp)
        deb = download(work)
        proc = _run(["dpkg", "-x", str(deb), str(work / "unpacked")], work)
        if proc.returncode != 0:
            raise FetchError(f"dpkg -x {deb.name} failed: {_last_line(proc)}")
        unpacked = work / "unpacked" / SYSTEM_DIR.lstrip("/")
        problem = file_problem(unpacked)
        if problem:
            raise FetchError(f"the downloaded package's files are not the expected ones: {problem}")
        for name in PACKAGE_FILES:  # each file appears whole or not at all
            shutil.copyfile(unpacked / name, work / f"{name}.part")
            os.replace(work / f"{name}.part", dest / name)


def install_as_root() -> int:
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", PACKAGE]):
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd) != 0:
            print(f"error: `{' '.join(cmd)}` failed", file=sys.stderr)
            return 1
    return 0


def get_files(to: Optional[Path] = None) -> int:
    """``just data``: nothing when good files are found; as root install the package; otherwise (or with ``to``)
    fetch the package's files as the current user into ``to`` (default :func:`user_dir`). The exit status."""
    if to is None:
        folder, problem = locate()
        if folder is not None:
            print(f"Fashion-MNIST: the package's files are in {folder} (sizes and SHA-256 checked)")
            return 0
        if problem:
            print(f"note: {problem}; getting the package's files again", file=sys.stderr)
        if os.geteuid() == 0:
            if install_as_root() != 0:
                return 1
            problem = file_problem(Path(SYSTEM_DIR))
            if problem:
                print(f"error: {problem}; reinstall with `apt-get install --reinstall {PACKAGE}`", file=sys.stderr)
                return 1
            print(f"Fashion-MNIST: installed {PACKAGE} into {SYSTEM_DIR}")
            return 0
    dest = to or user_dir()
    try:  # a folder that cannot be made or written is the input's fault, not the package's: say so before fetching
        dest.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(dest, os.W_OK) else "not writable"
    except OSError as err:
        problem = err.strerror
    if problem:
        print(f"error: {'--to ' if to else ''}{dest}: cannot make or write the folder ({problem}); choose a "
              "folder of your own, e.g. --to ~/data/fashion-mnist", file=sys.stderr)
        return 2
    print(f"fetching {PACKAGE} as user {os.getuid()} into {dest} (apt-get download + dpkg -x, no root)", flush=True)
    try:
        fetch_as_user(dest)
    except (FetchError, OSError) as err:
        print(f"error: could not fetch {PACKAGE} without root: {err}. The one command that works: {ROOT_COMMAND}",
              file=sys.stderr)
        return 1
    where = "" if to is None or to == user_dir() else f"; point dbsl at them with {ENV}={dest}"
    print(f"Fashion-MNIST: the package's files are in {dest} (sizes and SHA-256 checked){where}")
    return 0

