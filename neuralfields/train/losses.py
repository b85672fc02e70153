"""Photometric losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import NeuralFieldsError


def rgb_loss(pred: Tensor, target: Tensor, kind: str = "huber") -> Tensor:
    """``huber`` (smooth L1, robust to the rare badly-posed pixel) or ``mse``."""
    if kind == "huber":
        return F.smooth_l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise NeuralFieldsError(f"unknown loss '{kind}'; use huber or mse")
