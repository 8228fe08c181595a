"""The README's module map matches the tree: every path it names exists, and every module and package of dbsl is
named."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mapped_paths() -> set[Path]:
    text = (ROOT / "README.md").read_text().split("## Where the code lives", 1)[1]
    paths = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", first)
        folder = Path(names[0]).parent if not names[0].endswith("/") else Path(names[0])
        for i, name in enumerate(names):
            paths.add(ROOT / name if i == 0 or "/" in name else ROOT / folder / name)
    return paths


def test_every_mapped_path_exists():
    paths = mapped_paths()
    assert len(paths) > 20
    assert [p for p in paths if not p.exists()] == []


def test_every_dbsl_module_is_mapped():
    paths = mapped_paths()
    dbsl = ROOT / "dbsl"
    entries = [p for p in dbsl.iterdir() if (p.suffix == ".py" and p.name != "__init__.py")
               or (p.is_dir() and (p / "__init__.py").exists() and p.name != "ps")]  # ps/: file by file
    for path in (dbsl / "ps").glob("*.py"):
        if path.name != "__init__.py":
            entries.append(path)
    assert [p for p in entries if p not in paths] == []
