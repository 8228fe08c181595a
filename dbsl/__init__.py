"""dbsl: hybrid dual-batch and cyclic progressive learning on a parameter server (Lu, Hong, Liu, Wu)."""

__version__ = "0.1.0"
