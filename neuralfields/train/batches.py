"""Batch sources of scene training: random rays over the training images.

A batch source hands the loop a :class:`~neuralfields.render.RayBatch` per step. Images stay
where they are (the CPU, or the device when they fit there); pixel indices are drawn where the
images live and the finished batch moves to the model's device.
"""

from __future__ import annotations

import torch

from ..data.scene import Scene, batch_background, composite_background
from ..device import images_fit
from ..render.rays import RayBatch


class ImageRays:
    """Rays through uniformly random pixels of all training images, with their target colours.

    Args:
        scene: the training split; background: ``white``, ``black`` or ``random``.
        device: where batches are delivered (the model's device).
    """

    def __init__(self, scene: Scene, background: str = "white", device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.background = background
        self.images = scene.images
        if self.device.type != "cpu" and images_fit(scene.images.numel() * scene.images.element_size(), self.device):
            self.images = scene.images.to(self.device)
        self.cameras = scene.cameras.to(self.device)
        self.times = None if scene.times is None else scene.times.to(self.device)
        self.n_images, self.height, self.width = len(scene), scene.height, scene.width

    def next(self, n: int, step: int = 0) -> RayBatch:
        where = self.images.device
        img = torch.randint(0, self.n_images, (n,), device=where)
        y = torch.randint(0, self.height, (n,), device=where)
        x = torch.randint(0, self.width, (n,), device=where)
        pixels = (self.images[img, y, x].float() / 255.0).to(self.device)
        img, y, x = img.to(self.device), y.to(self.device), x.to(self.device)
        origins, dirs = self.cameras.rays(img, x.float() + 0.5, y.float() + 0.5)
        background = batch_background(self.background, n, self.device)
        times = None if self.times is None else self.times[img]
        return RayBatch(origins, dirs, times, img, composite_background(pixels, background), background)
