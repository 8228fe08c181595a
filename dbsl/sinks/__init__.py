"""Sinks: extra consumers of each commit's metrics row and of the final summary, beside the run record on disk.

A sink has ``log_commit(row)``, ``log_summary(summary)`` and ``finish(status)`` (dbsl.ps.monitor.Sink).
``wandb.WandbSink`` logs to Weights & Biases; ``pruning.PruningSink`` reports test accuracy to an Optuna trial.
"""
