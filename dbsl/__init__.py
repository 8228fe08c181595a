"""dbsl: hybrid dual-batch and cyclic progressive learning on a parameter server (Lu, Hong, Liu, Wu)."""

# OpenMP's wait policy is left to the user: on a quiet machine the default (busy-waiting) threads trained 1.5x faster
# than OMP_WAIT_POLICY=PASSIVE, but on cores shared with other processes they ran up to 10x slower; see
# benchmarks/thread_policy.py and the README's performance section.

__version__ = "0.1.0"
