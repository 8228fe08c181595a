"""Image files are checked before training, so that a corrupt or empty one stops the run at once, by name, instead
of minutes into training as a raw PIL error.

The pass is fast: PIL decodes a JPEG at 1/8 scale (its draft mode still reads every byte of the compressed data),
other formats in full, on every core. Its verdict per file is cached in a manifest keyed by the file's size and
modification time (under ``$DBSL_CACHE_DIR``, default ``~/.cache/dbsl``), so a second run only stats the files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from PIL import Image

from ..record import write_atomic

log = logging.getLogger("dbsl")

CACHE_ENV = "DBSL_CACHE_DIR"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbsl"


def manifest_path(folder: str) -> Path:
    """Where the verdicts on the images under ``folder`` are kept."""
    key = hashlib.sha1(os.path.abspath(folder).encode()).hexdigest()[:16]
    return cache_dir() / "images" / f"{key}.json"


def decode_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be decoded as an image, or None."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path) as img:
            img.draft("RGB", (1, 1))  # JPEG: the smallest DCT scale; no effect on other formats
            img.load()
    except Exception as err:  # noqa: BLE001 - PIL raises many types for bad files
        return f"{type(err).__name__}: {err}"
    return None


def _signature(path: str) -> List[int]:
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def bad_images(folder: str, paths: Sequence[str]) -> Dict[str, str]:
    """The files among ``paths`` (all under ``folder``) that cannot be decoded, with the reason; cached."""
    manifest = manifest_path(folder)
    try:
        known = json.loads(manifest.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        known = {}
    verdicts, todo, original = {}, [], {}
    for path in paths:
        name = os.path.relpath(path, folder)
        original[name] = path
        try:
            signature = _signature(path)
        except OSError as err:
            verdicts[name] = [0, 0, f"{type(err).__name__}: {err}"]
            continue
        entry = known.get(name)
        if isinstance(entry, list) and len(entry) == 3 and entry[:2] == signature:
            verdicts[name] = entry
        else:
            todo.append((name, path, signature))
    if todo:
        log.info("checking that %d images under %s decode (once: the verdicts are cached in %s)", len(todo), folder,
                 manifest)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            problems = list(pool.map(decode_problem, [path for _, path, _ in todo], chunksize=64))
        for (name, _, signature), problem in zip(todo, problems):
            verdicts[name] = signature + [problem]
        _save(manifest, folder, verdicts)
    return {original[name]: entry[2] for name, entry in verdicts.items() if entry[2]}


def _save(manifest: Path, folder: str, verdicts: dict) -> None:
    try:
        write_atomic(manifest, json.dumps({"folder": os.path.abspath(folder), "files": verdicts}) + "\n")
    except OSError as err:  # a read-only cache only costs the next run another pass
        log.warning("could not cache the image check in %s (%s); set $%s to a writable folder", manifest, err,
                    CACHE_ENV)
