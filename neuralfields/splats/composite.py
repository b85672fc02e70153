"""Front-to-back alpha compositing of projected Gaussians in pure PyTorch (the CPU rasteriser).

3DGS bins Gaussians into 16x16 tiles because a CUDA block shares one depth-sorted list among
its pixels. Vectorised PyTorch gains nothing from sharing and pays for every padded
(pixel, Gaussian) entry, so the bins here are single pixels: each Gaussian lists the pixels of
the box that bounds where its alpha can reach ``min_alpha`` (``sigma <= log(opacity / min_alpha)``,
an ellipse; at most 3.33 standard deviations), the pairs that pass the alpha test are sorted by
pixel (stably, after the Gaussians were sorted by depth, so each pixel's list is front to back)
and composited with a segmented cumulative sum of ``log(1 - alpha)``. The result is the 3DGS
rule exactly, pixel for pixel (a tile's pixels outside every such box would fail the alpha test
there too): ``alpha = min(max_alpha, opacity * exp(-sigma))``, pairs below ``min_alpha`` skipped,
a pixel stops before the Gaussian that would take its transmittance below ``min_transmittance``.

Work and memory grow with the pairs that pass the alpha test, not with tiles times list
lengths. Gaussians are processed in depth-ordered chunks of at most ``pair_budget`` candidate
pairs, each pixel carrying its transmittance from one chunk to the next, which bounds memory
for large frames and skips pixels that are already opaque. Gradients come from autograd.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .project import Projected

SLACK = 1e-3  # pixels added around each ellipse: rounding must not drop a pixel that passes the alpha test


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """``(owner [M], k [M])``: ``counts[i]`` entries for each ``i``, numbered ``0..counts[i] - 1``."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    k = torch.arange(len(owner), device=counts.device) - (torch.cumsum(counts, 0) - counts).index_select(0, owner)
    return owner, k


def _ellipse_pixels(params: Tensor, reach: Tensor, ext_y: Tensor, width: int, height: int):
    """The pixels whose centre lies inside each Gaussian's ellipse ``sigma <= reach``:
    ``(gaussian [M], x [M], y [M])`` int64, Gaussian-major.

    Rows first (the box's rows), then on each row the interval where the quadratic ``sigma(dx)``
    stays below ``reach``, so no pixel outside the ellipse is ever listed.
    """
    u, v, a, b, c = params[:, :5].unbind(-1)
    ext_y = ext_y + SLACK
    y0 = torch.ceil(v - ext_y - 0.5).clamp(0, height)
    y1 = (torch.floor(v + ext_y - 0.5) + 1).clamp(0, height)
    g, k = _expand((y1 - y0).clamp_min(0).long())
    y = y0.index_select(0, g).long() + k
    ug, ag, bg = u.index_select(0, g), a.index_select(0, g), b.index_select(0, g)
    dy = y + 0.5 - v.index_select(0, g)
    # 0.5 a dx^2 + b dy dx + 0.5 c dy^2 - reach <= 0  between the roots of this quadratic in dx.
    disc = ((bg * bg - ag * c.index_select(0, g)) * dy * dy + 2 * ag * reach.index_select(0, g)).clamp_min(0).sqrt()
    centre, half = ug - bg * dy / ag - 0.5, disc / ag + SLACK
    x0 = torch.ceil(centre - half).clamp(0, width)
    x1 = (torch.floor(centre + half) + 1).clamp(0, width)
    row, k = _expand((x1 - x0).clamp_min(0).long())
    return g.index_select(0, row), x0.index_select(0, row).long() + k, y.index_select(0, row)


def _sigma(u: Tensor, v: Tensor, a: Tensor, b: Tensor, c: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``[M]`` the Gaussian exponent ``a dx^2 / 2 + b dx dy + c dy^2 / 2`` at pixel centres ``(x, y)``
    of Gaussians ``(u, v, a, b, c)`` already gathered per pair (all ``[M]``)."""
    dx, dy = x + 0.5 - u, y + 0.5 - v
    return 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy


def composite(proj: Projected, opacities: Tensor, colours: Tensor, width: int, height: int, background: Tensor,
              max_alpha: float = 0.99, min_alpha: float = 1 / 255, min_transmittance: float = 1e-4,
              pair_budget: int = 1 << 23) -> tuple[Tensor, Tensor]:
    """Composite the visible Gaussians of ``proj`` front to back.

    Args:
        proj: projected Gaussians (``N`` rows); opacities ``[N]``; colours ``[N, C]``.
        background: ``[C]`` colour behind everything.
        pair_budget: most candidate (pixel, Gaussian) pairs held at once.
    Returns:
        ``image [H, W, C]`` and ``alpha [H, W]`` (one minus the final transmittance).
    """
    device, n_pix = colours.device, width * height
    with torch.no_grad():
        ids = proj.visible.nonzero().squeeze(1)
        ids = ids[torch.argsort(proj.depths[ids])]  # front to back
        reach = torch.log(opacities[ids] / min_alpha)  # alpha >= min_alpha  <=>  sigma <= reach
        ids, reach = ids[reach > 0], reach[reach > 0]
        cov = proj.cov2d[ids]
        ext_x, ext_y = (2 * reach * cov[:, 0]).sqrt(), (2 * reach * cov[:, 2]).sqrt()
        area = (2 * ext_x + 1) * (2 * ext_y + 1)  # an upper bound of each ellipse's pixel count
        chunk = torch.searchsorted(torch.cumsum(area, 0), torch.arange(1, 1 + int(area.sum()) // pair_budget,
                                                                        device=device) * float(pair_budget))
        bounds = [0, *sorted(set(chunk.tolist()) - {0, len(ids)}), len(ids)]

    params = torch.cat([proj.means2d[ids], proj.conics[ids], opacities[ids, None]], 1)  # [K, 6]: u v a b c o
    # Gathered per pair column by column: the backward of a gather scatters into its source, and
    # a 1D source of K values is far cheaper to clear and scatter into than columns of a [M, 6] copy.
    columns = [col.contiguous() for col in params.unbind(1)]
    cols = colours[ids]
    image = colours.new_zeros(n_pix, colours.shape[1])
    log_t = torch.zeros(n_pix, dtype=torch.float64, device=device)  # log transmittance so far
    log_min_t = math.log(min_transmittance) if min_transmittance > 0 else -math.inf
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        with torch.no_grad():
            gid, x, y = _ellipse_pixels(params.detach()[lo:hi], reach[lo:hi], ext_y[lo:hi], width, height)
            gid += lo
            pix = (y * width + x).int()  # int32: sorts faster, and any image fits
            if lo > 0:  # pixels an earlier chunk made opaque take nothing more
                open_ = (log_t.index_select(0, pix) >= log_min_t).nonzero().squeeze(1)
                gid, pix = gid.index_select(0, open_), pix.index_select(0, open_)
            pix, order = torch.sort(pix, stable=True)  # per pixel, still front to back
            pix = pix.long()  # index_add with int32 indices takes a slow path on the CPU
            gid = gid.index_select(0, order)
            x, y = (pix % width).float(), (pix // width).float()
            first = torch.ones_like(pix, dtype=torch.bool)
            first[1:] = pix[1:] != pix[:-1]
            segment = torch.cumsum(first, 0) - 1
        if len(pix) == 0:
            continue
        u, v, a, b, c, opacity = (col.index_select(0, gid) for col in columns)
        sigma = _sigma(u, v, a, b, c, x, y)
        raw = opacity * torch.exp(-sigma)
        with torch.no_grad():  # the ellipse is the alpha test up to rounding: apply the test itself
            passed = (sigma >= 0) & (raw >= min_alpha)
        alpha = raw.clamp_max(max_alpha) * passed
        log_1ma = torch.log1p(-alpha).double()
        # Exclusive sums within each pixel's run: a global cumulative sum minus its value at the
        # run's start (float64: the global sum grows with the pair count).
        before = torch.cumsum(log_1ma, 0) - log_1ma
        log_excl = before - before[first].index_select(0, segment) + log_t.index_select(0, pix)
        with torch.no_grad():
            drawn = (log_excl + log_1ma) >= log_min_t  # a prefix of each run: transmittance only falls
        weight = alpha * torch.exp(log_excl).float() * drawn
        image = image.index_add(0, pix, weight[:, None] * cols.index_select(0, gid))
        log_t = log_t.index_add(0, pix, log_1ma * drawn)
    trans = torch.exp(log_t).float()
    image = image + trans[:, None] * background
    return image.reshape(height, width, -1), (1 - trans).reshape(height, width)
