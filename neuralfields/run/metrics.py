"""Image quality metrics on ``[H, W, C]`` float images in [0, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def mse_to_psnr(mse: float | Tensor) -> float:
    mse = float(mse)
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def psnr_of(mse: Tensor) -> Tensor:
    """PSNR of ``mse`` as a tensor on its device (training stats stay there until logged)."""
    return -10.0 * torch.log10(mse.detach().clamp_min(1e-12))


def psnr(pred: Tensor, target: Tensor) -> float:
    return mse_to_psnr(F.mse_loss(pred.float(), target.float()))


def _gaussian_window(size: int, sigma: float) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_tensor(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, averaged over
    channels, as a differentiable 0-d tensor on the images' device (a training loss can use it)."""
    x = pred.float().permute(2, 0, 1)[None]  # [1, C, H, W]
    y = target.float().permute(2, 0, 1)[None]
    c = x.shape[1]
    g = _gaussian_window(window, sigma).to(x.device)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()

    def blur(img: Tensor) -> Tensor:  # valid convolution, as the reference implementation
        return F.conv2d(img, kernel, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return ssim_map.mean()


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """:func:`ssim_tensor` as a number."""
    return float(ssim_tensor(pred.detach(), target.detach(), window, sigma))
