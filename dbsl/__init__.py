"""dbsl: hybrid dual-batch and cyclic progressive learning on a parameter server (Lu, Hong, Liu, Wu)."""

# OpenMP's wait policy is left to the user: on a quiet machine the default (busy-waiting) threads train faster than
# OMP_WAIT_POLICY=PASSIVE, on cores shared with other processes much slower; benchmarks/thread_policy.py measures it
# and the README's performance section gives the numbers.

__version__ = "0.1.0"
