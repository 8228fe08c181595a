"""Time-model calibration on the user's own hardware (``dbsl calibrate``, also ``python -m dbsl.calibrate``; paper
section 4).

``calibrate``: the orchestration (the command's arguments are read in :mod:`dbsl.cli.calibrate`); ``measure``:
clock-driven timing and the largest-batch search; ``step``: the real training step being timed (LocalTrainer on
Pipeline batches) and its memory; ``fit``: the paper's line per resolution, its quality and the measured-table
fallback; ``profile``: the hardware profile YAML; ``validation``: the Table-4-style check of whole mini-epochs;
``outputs``: the CSV tables and the plot for the report.
"""
