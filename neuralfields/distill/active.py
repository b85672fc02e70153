"""PVD-AL's three levels of active learning: hard poses, hard rays, important samples.

The student's errors against the teacher are free to measure during distillation (both render
the same rays), so the distiller feeds them back into what it trains on next:

- view level (:class:`HardPosePool`): each step's poses are scored by the student-vs-teacher
  PSNR of their rays; the worst ``pose_pool_size`` are kept, and a share of later steps' poses is
  taken from the worst of them, each moved by a small random rotation about the scene centre
  (a jittered revisit covers the neighbourhood of the hard view rather than one exact image).
  A revisited pose leaves the pool; it returns only if its jittered copy is still hard;
- ray level: the rays with the largest pixel error are kept (newest first, up to
  ``ray_pool_size``) and the worst of them replayed as a share of later batches, then dropped.
  This is the project's one example-selection mechanism (:mod:`neuralfields.selection`, an
  :class:`~neuralfields.selection.ErrorReplay` chosen from by INT), configured by PVD-AL's numbers;
- sample level (:func:`important_samples`): per-sample colour and feature losses are restricted
  to the samples carrying most of the teacher's rendering weight; the rest are invisible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras
from .poses import cat_cameras


class HardPosePool:
    """The ``capacity`` lowest-PSNR poses seen so far (cameras, times and scores).

    Kept on the CPU, like the pose sampler's cameras: a few poses a step, moved with the rest of
    a step's cameras when their rays are made.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.cameras: Cameras | None = None
        self.times: Tensor | None = None
        self.psnr = torch.zeros(0)

    def __len__(self) -> int:
        return int(self.psnr.numel())

    def add(self, cameras: Cameras, times: Tensor | None, psnr: Tensor) -> None:
        """Offer poses with their scores ``[K]`` (NaN scores, for poses without rays, are skipped)."""
        keep = torch.isfinite(psnr)
        if not keep.any():
            return
        idx = keep.nonzero()[:, 0]
        new = cameras[idx]
        cams = new if self.cameras is None else cat_cameras([self.cameras, new])
        scores = torch.cat([self.psnr, psnr[idx].float()])
        times_all = None
        if times is not None:
            times_all = times[idx] if self.times is None else torch.cat([self.times, times[idx]])
        order = torch.argsort(scores)[: self.capacity]  # lowest PSNR first
        self.cameras, self.psnr = cams[order], scores[order]
        self.times = None if times_all is None else times_all[order]

    def pop_worst(self, n: int) -> tuple[Cameras, Tensor | None] | None:
        """Remove and return the ``n`` worst poses (fewer if the pool is smaller), or None."""
        n = min(n, len(self))
        if n == 0:
            return None
        cams, times = self.cameras[torch.arange(n)], None if self.times is None else self.times[:n]
        rest = torch.arange(n, len(self))
        self.cameras, self.psnr = self.cameras[rest], self.psnr[rest]
        self.times = None if self.times is None else self.times[rest]
        return cams, times

    def state_dict(self) -> dict:
        cams = None if self.cameras is None else {f: getattr(self.cameras, f) for f in Cameras._fields()}
        return {"cameras": cams, "times": self.times, "psnr": self.psnr}

    def load_state_dict(self, state: dict) -> None:
        self.cameras = None if state["cameras"] is None else Cameras(**state["cameras"])
        self.times, self.psnr = state["times"], state["psnr"]


def important_samples(weights: Tensor, mass: float) -> Tensor:
    """``[S]`` bool: the fewest samples whose weights sum to ``mass`` of the batch's total.

    All samples are kept when ``mass >= 1`` or the batch carries no weight at all.
    """
    total = weights.sum()
    if mass >= 1.0 or weights.numel() == 0 or total <= 0:
        return torch.ones_like(weights, dtype=torch.bool)
    values, order = torch.sort(weights, descending=True)
    cumulative = torch.cumsum(values.double(), 0)
    count = int(torch.searchsorted(cumulative, mass * total.double()).item()) + 1
    keep = torch.zeros_like(weights, dtype=torch.bool)
    keep[order[: min(count, weights.numel())]] = True
    return keep


def per_camera_psnr(errors: Tensor, camera: Tensor, n_cameras: int, min_rays: int = 8) -> Tensor:
    """PSNR ``[K]`` of each camera's rays from per-ray squared errors ``[R]`` (NaN below ``min_rays``)."""
    valid = camera >= 0  # replayed rays belong to no camera of this step
    cam, err = camera[valid], errors[valid].double()
    sums = torch.zeros(n_cameras, dtype=torch.float64, device=err.device).index_add(0, cam, err)
    counts = torch.zeros(n_cameras, dtype=torch.float64, device=err.device).index_add(0, cam, torch.ones_like(err))
    mse = sums / counts.clamp_min(1)
    psnr = -10.0 * torch.log10(mse.clamp_min(1e-12))
    return torch.where(counts >= min_rays, psnr, torch.full_like(psnr, float("nan"))).float()
