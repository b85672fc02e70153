"""neuralfields: neural fields and 3D reconstruction in pure PyTorch."""

__version__ = "0.1.0"
