"""dbsl: hybrid dual-batch and cyclic progressive learning on a parameter server (Lu, Hong, Liu, Wu)."""

# OpenMP's wait policy is left to the user: on a quiet machine the default (busy-waiting) threads train faster than
# OMP_WAIT_POLICY=PASSIVE, on cores shared with other processes much slower; benchmarks/thread_policy.py measures it
# and the README's performance section gives the numbers.

import os

# PyTorch's C++ warnings (TensorPipe's "encountered error when reading incoming request" after a distributed run is
# stopped, gloo's deprecation notice in every process) go to stderr past Python's logging: a page of them followed
# the one clean line of a Ctrl-C. dbsl shows C++ errors only, unless the user set the level (before torch loads).
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"
