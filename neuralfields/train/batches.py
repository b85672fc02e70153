"""Batch sources of scene training: rays through pixels of the training images.

A batch source hands the loop a :class:`~neuralfields.render.RayBatch` per step. Images stay
where they are (the CPU, or the device when they fit there); pixel indices are drawn where the
images live and the finished batch moves to the model's device. Which pixels is the
:class:`~neuralfields.selection.Selection`'s choice: uniform, or partly chosen by an error map
over cells of ``select.cell`` pixels that the batches' own errors keep up to date.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.scene import Scene, batch_background, composite_background
from ..device import images_fit
from ..render.rays import RayBatch
from ..selection import IndexDraw, Selection


class ImageRays:
    """Rays through pixels of all training images, with their target colours.

    Args:
        scene: the training split; background: ``white``, ``black`` or ``random``.
        device: where batches are delivered (the model's device).
        selection: how pixels are chosen (default: uniformly).
    """

    def __init__(self, scene: Scene, background: str = "white", device: torch.device | str = "cpu",
                 selection: Selection | None = None):
        self.device = torch.device(device)
        self.background = background
        self.images = scene.images
        if self.device.type != "cpu" and images_fit(scene.images.numel() * scene.images.element_size(), self.device):
            self.images = scene.images.to(self.device)
        self.cameras = scene.cameras.to(self.device)
        self.times = None if scene.times is None else scene.times.to(self.device)
        self.n_images, self.height, self.width = len(scene), scene.height, scene.width
        selection = selection or Selection()
        c = selection.cfg.cell
        self.cells_y, self.cells_x = -(-self.height // c), -(-self.width // c)
        self.draw = IndexDraw(self.n_images * self.height * self.width, selection, self.images.device,
                              self.cell_of, self.n_images * self.cells_y * self.cells_x)

    def pixel(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(image, y, x)`` of flat pixel indices ``[M]``."""
        per_image = self.height * self.width
        return idx // per_image, (idx % per_image) // self.width, idx % self.width

    def cell_of(self, idx: Tensor) -> Tensor:
        img, y, x = self.pixel(idx)
        c = self.draw.selection.cfg.cell
        return (img * self.cells_y + y // c) * self.cells_x + x // c

    def next(self, n: int, progress: float = 0.0) -> RayBatch:
        img, y, x = self.pixel(self.draw.next(n, progress))
        pixels = (self.images[img, y, x].float() / 255.0).to(self.device)
        img, y, x = img.to(self.device), y.to(self.device), x.to(self.device)
        origins, dirs = self.cameras.rays(img, x.float() + 0.5, y.float() + 0.5)
        background = batch_background(self.background, n, self.device)
        times = None if self.times is None else self.times[img]
        return RayBatch(origins, dirs, times, img, composite_background(pixels, background), background)

    def observe(self, batch: RayBatch, errors: Tensor) -> None:
        """The batch's per-ray squared errors ``[n]`` update the error map."""
        self.draw.observe(errors)

    def state_dict(self) -> dict:
        return self.draw.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draw.load_state_dict(state)
