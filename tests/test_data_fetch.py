"""`just data` without root (`python3 -m dbsl data`, dbsl/data/fashion_mnist.py): a real non-root user downloads and
unpacks the Debian package dataset-fashion-mnist into its cache folder, where dbsl's Fashion-MNIST source then finds
it; files that are not the package's are named in one line."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dbsl.config import DatasetConfig
from dbsl.data import DataError, fashion_mnist, load_dataset

DBSL_PACKAGE = Path(fashion_mnist.__file__).parents[1]  # dbsl/
FETCH_TIMEOUT = 300  # seconds: a 31 MB package from the Debian registry, and maybe a private package list


# what a fresh machine without root lacks: the installed package and any package list (apt-get update needs root)
FRESH = ("/usr/share/datasets/fashion-mnist", "/var/lib/apt/lists")
AS_FRESH_USER = ('set -e; empty=$1; user=$2; shift 2; for d in ' + " ".join(FRESH) +
                 '; do if [ -d "$d" ]; then mount --bind "$empty" "$d"; fi; done; exec runuser -u "$user" -- "$@"')


@pytest.fixture
def fresh_user():
    """(command prefix, folder): run as a new non-root user in a private mount namespace where the installed package
    and the package lists are hidden behind an empty folder, as on a fresh machine; a folder that user may write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a user and hide the installed package (CI runs as root)")
    work = Path(tempfile.mkdtemp(prefix="dbsl-fetch-", dir="/tmp"))  # pytest's tmp_path is private to root
    work.chmod(0o755)
    (work / "empty").mkdir()
    user = f"dbsl{os.getpid()}"[:31]
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    try:
        shutil.chown(work, user)
        yield ["unshare", "--mount", "sh", "-c", AS_FRESH_USER, "sh", str(work / "empty"), user], work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["userdel", user], check=False)


def runnable_python(prefix) -> str:
    """An interpreter the user may run (the project's may live in root's home): the module needs only the stdlib."""
    for python in ("/usr/bin/python3", sys.executable):
        if os.path.exists(python) and subprocess.run([*prefix, python, "-c", "pass"]).returncode == 0:
            return python
    pytest.fail("no python3 that a non-root user may run (install Debian's python3)")


def hide_system_package(monkeypatch, tmp_path, cache: Path) -> None:
    """dbsl looks where a machine without the package would have nothing, then in the user's cache folder."""
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", str(tmp_path / "no-package"))
    monkeypatch.delenv(fashion_mnist.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


def test_a_user_without_root_fetches_the_package_and_dbsl_finds_it(fresh_user, tmp_path, monkeypatch):
    prefix, work = fresh_user
    # the dbsl package, where the user can read it; the system's python3 runs `python3 -m dbsl data` from there, as
    # `just data` does from the repository before `just setup` (the command's path is standard library only)
    shutil.copytree(DBSL_PACKAGE, work / "dbsl", ignore=shutil.ignore_patterns("__pycache__"))
    python = runnable_python(prefix)
    command = [python, "-m", "dbsl", "data"]
    env = ["env", "-i", f"HOME={work}", f"XDG_CACHE_HOME={work / 'cache'}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
           f"{fashion_mnist.ENV}="]
    proc = subprocess.run([*prefix, *env, *command], capture_output=True, text=True, timeout=FETCH_TIMEOUT, cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fetching dataset-fashion-mnist as user" in proc.stdout and "as user 0 " not in proc.stdout
    assert "fetching a private list" in proc.stdout  # no package list on a fresh machine: apt-get update as the user
    folder = work / "cache" / "dbsl" / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(fashion_mnist.PACKAGE_FILES)  # nothing else left
    assert sorted(p.name for p in folder.parent.iterdir()) == ["fashion-mnist"]  # the temporary folder is gone
    assert all(p.stat().st_uid != 0 for p in folder.iterdir())
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):  # the same bytes as root's installed package
        for name in fashion_mnist.PACKAGE_FILES:
            assert (folder / name).read_bytes() == Path("/usr/share/datasets/fashion-mnist", name).read_bytes()
    again = subprocess.run([*prefix, *env, *command], capture_output=True, text=True, timeout=60, cwd=work)
    assert again.returncode == 0 and f"files are in {folder}" in again.stdout  # found and checked: no download

    hide_system_package(monkeypatch, tmp_path, work / "cache")
    src = load_dataset(DatasetConfig(name="fashion_mnist", root=str(tmp_path / "data")))
    assert (len(src.train), len(src.test), src.num_classes) == (60000, 10000, 10)
    # Fashion-MNIST's first training and test images are both ankle boots (class 9)
    assert int(src.train.labels[0]) == 9 and int(src.test.labels[0]) == 9
    assert src.classes[9] == "Ankle boot"


def test_files_that_are_not_the_packages_are_named(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    folder = cache / "dbsl" / "fashion-mnist"
    folder.mkdir(parents=True)
    hide_system_package(monkeypatch, tmp_path, cache)
    for name, (size, _) in fashion_mnist.PACKAGE_FILES.items():
        (folder / name).write_bytes(b"\0" * size)  # the right sizes, the wrong bytes
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz has the package's size but not its SHA-256"):
        load_dataset(DatasetConfig(name="fashion_mnist", root=str(tmp_path / "data")))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\0" * 100)  # a truncated download
    with pytest.raises(DataError) as err:
        load_dataset(DatasetConfig(name="fashion_mnist", root=str(tmp_path / "data")))
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz has 100 bytes, the package's has 26421856" in message
    assert "just data" in message
    assert "\n" not in message
    assert not (tmp_path / "data" / "FashionMNIST" / "raw").exists() or \
        not any((tmp_path / "data" / "FashionMNIST" / "raw").iterdir())  # nothing extracted from bad files


def test_a_folder_that_cannot_be_made_is_one_line_naming_it_before_any_fetch(tmp_path, capsys):
    assert fashion_mnist.get_files(Path("/proc/dbsl-data")) == 2  # /proc takes no new folders, not even root's
    out, err = capsys.readouterr()
    assert err.splitlines() == [err.strip()] and err.startswith("error: --to /proc/dbsl-data: cannot make or write")
    assert "fetching" not in out


def test_without_apt_it_prints_the_one_command_that_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get, no dpkg
    assert fashion_mnist.get_files(tmp_path / "dest") == 1
    err = capsys.readouterr().err
    assert "cannot run apt-get" in err
    assert "The one command that works: sudo apt-get install dataset-fashion-mnist" in err
    assert not any((tmp_path / "dest").iterdir())  # no half-fetched files
