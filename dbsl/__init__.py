"""dbsl: hybrid dual-batch and cyclic progressive learning on a parameter server (Lu, Hong, Liu, Wu)."""
import os

# OpenMP threads that busy-wait for each other run up to 10x slower when other processes share the cores (a sweep,
# the distributed executor's workers, a CI machine); passive waiting cost ~2 % when alone (benchmarks/thread_policy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
