"""Sweeps: named presets run as Hydra multiruns (:mod:`.cli`, ``python -m dbsl.sweep``), each job's outcome and the
sweep summary (:mod:`.outcomes`, the Hydra callback), and the results table (:mod:`.table`)."""
