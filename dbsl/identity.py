"""What a run is: the one rule behind skip and resume, report grouping, W&B tags and Optuna study continuation.

A run is what its config computes. Keys that only say where or how a run goes (:data:`NON_IDENTITY_KEYS`: resume,
the logger, the thread count, ...) are not part of it: Hydra leaves them out of run directory names
(``hydra.job.config.override_dirname.exclude_keys`` in dbsl/conf/config.yaml reads this list through the
``dbsl_non_identity_keys`` resolver), so that running a sweep again finds the same runs; sweep tables, W&B tags
and a study's spec leave them out too. The report groups records by the same rule, applied to each run's resolved
config.yaml, and also drops the seed (runs that differ only by seed form one group) and, for runs without small-batch workers, the dual-batch keys
(k and the update factor then change nothing).
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable, Sequence

# Override keys that do not change what a run computes (also Hydra's exclude_keys, read from here).
NON_IDENTITY_KEYS = (
    "resume", "overwrite", "fail_fast", "device", "results_dir", "sweep_name", "logger", "logger.wandb",
    "logger.mode", "logger.progress", "logger.project", "logger.entity", "logger.group", "logger.tags",
    "train.threads", "checkpoint_every", "checkpoint_minutes", "hydra.launcher.n_jobs", "hydra/launcher",
)
# ... and resolved-config keys that do not either: where the run lives, and the seed (a group spans seeds)
RECORD_ONLY_KEYS = ("seed", "output_dir", "results_dir", "sweep_name", "hydra")
# keys that say which scheme a group runs (its row inside an experiment), not which experiment it belongs to
SCHEME_KEYS = ("scheme", "dbsl", "ps.update_factor")
# keys that change nothing without small-batch workers (n_S = 0)
DUAL_BATCH_KEYS = ("dbsl", "ps.update_factor")
MAX_DIRNAME = 180  # longer run directory names are cut and hashed


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def repeated_key(overrides: Iterable[str]) -> str | None:
    """The first key given twice among command-line overrides (``seed=1 seed=2``: Hydra keeps the last one
    silently), or None. Flags (``-m``, ``--cfg``) are not overrides."""
    seen = set()
    for override in overrides:
        if override.startswith("-") or "=" not in override:
            continue
        key = override_key(override)
        if key in seen:
            return key
        seen.add(key)
    return None


def identity_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that define what a run computes (run labels, W&B tags, a study's spec)."""
    return [o for o in overrides if override_key(o) not in NON_IDENTITY_KEYS]


def run_dirname(override_dirname: str) -> str:
    """A run directory's name from Hydra's ``override_dirname`` (the identity overrides, sorted): 'default' when
    there are none; cut and hashed when too long for a file name."""
    name = override_dirname.replace("/", "_") or "default"
    if len(name) > MAX_DIRNAME:
        name = name[:160] + "_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def has_prefix(key: str, prefixes: Iterable[str]) -> bool:
    """``key`` is one of ``prefixes`` or lies below one (``dbsl.num_small`` below ``dbsl``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def flatten(tree, prefix: str = "") -> dict:
    """A nested config as {dotted key: value}, lists as tuples."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tuple(tree) if isinstance(tree, list) else tree}


def identity_config(config: dict, num_small) -> dict:
    """A run's flattened resolved config reduced to what it computes, across seeds (``num_small``: its n_S)."""
    config = {k: v for k, v in config.items() if not has_prefix(k, NON_IDENTITY_KEYS + RECORD_ONLY_KEYS)}
    if not num_small:
        config = {k: v for k, v in config.items() if not has_prefix(k, DUAL_BATCH_KEYS)}
    return config


def identity_hash(config: dict, drop: Sequence[str] = ()) -> str:
    """A short stable name of an identity config, without the keys under ``drop``: the report's group (drop
    nothing) and setup (drop :data:`SCHEME_KEYS`)."""
    kept = sorted((k, v) for k, v in config.items() if not has_prefix(k, drop))
    return hashlib.sha1(json.dumps(kept, default=str).encode()).hexdigest()[:12]


def run_identity(config_tree: dict) -> dict:
    """What one run is, seed included: its resolved config flattened, without the keys that do not change what it
    computes (:data:`NON_IDENTITY_KEYS`) or say where it lives. A checkpoint carries it; a resume compares it."""
    kept = {k: v for k, v in flatten(config_tree).items()
            if not has_prefix(k, NON_IDENTITY_KEYS + RECORD_ONLY_KEYS) or k == "seed"}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(kept.items())}


def identity_difference(stored: dict, wanted: dict, shown: int = 4) -> str:
    """The keys where two run identities differ, as 'key: stored -> wanted' (the first few)."""
    keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    text = "; ".join(f"{k}: {stored.get(k, 'unset')} -> {wanted.get(k, 'unset')}" for k in keys[:shown])
    return text + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
