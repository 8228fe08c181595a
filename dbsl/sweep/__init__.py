"""Sweeps: named presets run as Hydra multiruns (:mod:`.presets`; the command is ``dbsl sweep``), one job of a
multirun (:mod:`.job`), each job's outcome and the sweep summary (:mod:`.outcomes`, the Hydra callback), and the
results table (:mod:`.table`)."""
