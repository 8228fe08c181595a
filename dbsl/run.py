"""python -m dbsl.run [-m] <overrides>: the Hydra app (one run, or a multirun sweep with -m)."""
from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .compose import register_all
from .config import to_config
from .runner import execute

log = logging.getLogger("dbsl")
register_all()


def task_overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> dict:
    cfg = to_config(dcfg)
    return execute(cfg, task_overrides())


if __name__ == "__main__":
    main()
