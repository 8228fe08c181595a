"""The hardware profile a calibration writes: ``results/conf/hardware/<name>.yaml``, in the format of
``dbsl/conf/hardware/*.yaml`` (schema :class:`~dbsl.config.HardwareConfig`), so that ``hardware=<name>`` uses it.

Every resolution carries both the fitted line (a, b) and the measured table (batch_sizes, batch_times); ``kind``
chooses which one the plan uses, and ``hardware.kind=table`` switches a linear profile to its table.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from ..config import ConfigError, HardwareConfig, ResolutionProfile
from ..record import write_atomic
from .fit import ResolutionFit

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "conf" / "hardware"


def check_name(name: str) -> str:
    """A profile name usable as ``hardware=<name>`` and not shadowed by a shipped profile of the same name."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"--name={name!r}: a profile name is a file name of letters, digits, '_', '-' and '.', "
                          "e.g. --name cpu_w16_fmnist")
    if (SHIPPED_DIR / f"{name}.yaml").exists():
        raise ConfigError(f"--name={name!r}: dbsl ships a profile of that name (dbsl/conf/hardware/{name}.yaml), "
                          "which hardware=<name> would keep finding first; choose another --name")
    return name


def hardware_config(name: str, description: str, kind: str, fits: Sequence[ResolutionFit]) -> HardwareConfig:
    return HardwareConfig(name=name, description=description, kind=kind, resolutions=[
        ResolutionProfile(resolution=f.resolution, a=f.a, b=f.b, batch_large=f.batch_large,
                          batch_sizes=f.batch_sizes,
                          batch_times=[round(t, 9) for t in f.table_times]) for f in fits])


def profile_yaml(hw: HardwareConfig, comments: Sequence[str]) -> str:
    """The profile as YAML (one flow-style entry per resolution), headed by ``comments``."""
    lines = [f"# {c}" if c else "#" for c in comments]
    lines += [f"name: {hw.name}", f"description: {json.dumps(hw.description)}",
              f"kind: {hw.kind}", "resolutions:"]
    for p in hw.resolutions:
        lines.append(f"  - {{resolution: {p.resolution}, a: {p.a!r}, b: {p.b!r}, batch_large: {p.batch_large},")
        lines.append(f"     batch_sizes: {list(p.batch_sizes)},")
        lines.append(f"     batch_times: [{', '.join(repr(t) for t in p.batch_times)}]}}")
    return "\n".join(lines) + "\n"


def load_profile(path: Path | str) -> HardwareConfig:
    """Read a profile file against the schema (what Hydra does with ``hardware=<name>``)."""
    data = OmegaConf.merge(OmegaConf.structured(HardwareConfig), OmegaConf.load(path))
    return OmegaConf.to_object(data)


def write_profile(path: Path | str, hw: HardwareConfig, comments: Sequence[str]) -> Path:
    """Write atomically, after checking that the text reads back as the same profile."""
    text = profile_yaml(hw, comments)
    back = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(HardwareConfig), OmegaConf.create(text)))
    if back != hw:
        raise RuntimeError(f"the profile YAML does not read back as written:\n{text}")
    write_atomic(path, text)
    return Path(path)
