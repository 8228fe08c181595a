"""Compose a validated config outside a Hydra app (the plan CLI, tuning, tests) from the same config tree, and
register the resolvers the config tree uses (run directory names, the checked results_dir)."""
from __future__ import annotations

import logging
import warnings
from typing import Sequence

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from .config import Config, register, repeated_override_warning, to_config
from .identity import NON_IDENTITY_KEYS, run_dirname
from .paths import results_subdir


def register_all() -> None:
    register()
    if not OmegaConf.has_resolver("dbsl_dirname"):
        OmegaConf.register_new_resolver("dbsl_dirname", run_dirname)
    if not OmegaConf.has_resolver("dbsl_non_identity_keys"):  # hydra.job.config.override_dirname.exclude_keys
        OmegaConf.register_new_resolver("dbsl_non_identity_keys", lambda: list(NON_IDENTITY_KEYS))
    if not OmegaConf.has_resolver("dbsl_output_dir"):
        OmegaConf.register_new_resolver("dbsl_output_dir", results_subdir)


def compose_config(overrides: Sequence[str] = (), validate: bool = True) -> Config:
    """The config a ``python -m dbsl.run <overrides>`` would get, as a validated :class:`Config`."""
    register_all()
    overrides = list(overrides)
    if warning := repeated_override_warning(overrides):
        logging.getLogger("dbsl").warning(warning.removeprefix("warning: "))
    if not any(o.split("=")[0].lstrip("+") == "output_dir" for o in overrides):
        overrides.append("output_dir=results/runs/compose")
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="dbsl.conf", version_base="1.3"), warnings.catch_warnings():
        # results/conf (calibrated hardware profiles) is on the search path but need not exist
        warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath.*is not available")
        cfg = compose(config_name="config", overrides=overrides)
    return to_config(cfg) if validate else OmegaConf.to_object(cfg)
