"""Models: the ResNet-18 family of the paper (section 6)."""
from .resnet import ResNet18, build_model, kernel_parameters

__all__ = ["ResNet18", "build_model", "kernel_parameters"]
