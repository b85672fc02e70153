"""Adaptive density control, as 3D Gaussian splatting does it.

After every backward pass the norm of each drawn Gaussian's view-space positional gradient
(the gradient of its screen-space mean, in normalised device units: pixels x half the image
size) is accumulated. Every ``every`` steps between ``start`` and ``stop``, Gaussians whose mean
gradient reaches ``grad_threshold`` are under-reconstructing their region: small ones (largest
axis at most ``dense_fraction`` of the scene extent) are cloned, large ones are split in two,
sampled from themselves and shrunk by 1.6. Then Gaussians that are nearly transparent, or
(after the first opacity reset) too large on screen or in the world, are pruned. Every
``reset_every`` steps opacities are capped at ``reset_opacity`` so that Gaussians that are not
needed fade and get pruned.

Parameters keep their identity while they change size (``param.data`` is replaced), and the
optimiser's Adam moments are cut and extended with them (zeros for new Gaussians, as 3DGS), so
the loop that built the optimiser needs to know nothing of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .rasterize import RasterOutput
from .scene import GaussianScene, logit, rotation_matrices

MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-parameter state that follows the Gaussians


@dataclass
class DensifyConfig:
    """When and how Gaussians are added and removed (defaults: the reference implementation's).

    Attributes:
        start, stop, every: densify and prune every ``every`` steps in ``[start, stop)``.
        grad_threshold: mean view-space gradient norm (NDC units) that densifies a Gaussian.
        dense_fraction: of the scene extent: a Gaussian larger than this splits, a smaller one clones.
        min_opacity: pruned below this opacity.
        max_screen_radius: pixels; pruned above, once opacities have been reset (None: never).
        max_world_fraction: of the scene extent; pruned above, once opacities have been reset.
        reset_every, reset_opacity: the opacity reset (``reset_every`` 0: never).
        max_gaussians: no densification beyond this count (the highest gradients go first).
        min_views: a due densification waits until at least this many views were recorded since
            the last one (its gradient means need them; a run paced by time may be due sooner).
    """

    start: int = 500
    stop: int = 15_000
    every: int = 100
    grad_threshold: float = 2e-4
    dense_fraction: float = 0.01
    min_opacity: float = 0.005
    max_screen_radius: float | None = 20.0
    max_world_fraction: float = 0.1
    reset_every: int = 3000
    reset_opacity: float = 0.01
    max_gaussians: int | None = None
    min_views: int = 1


def edit_gaussians(scene: GaussianScene, optimizer: torch.optim.Optimizer | None,
                   change: Callable[[str, Tensor, bool], Tensor]) -> None:
    """Replace every parameter ``p`` of ``scene`` by ``change(name, p.data, False)`` and its Adam
    moments ``m`` by ``change(name, m, True)`` (``True``: a moment, whose new rows are zeros)."""
    for name, param in scene.named_parameters():
        param.data = change(name, param.data, False)
        param.grad = None  # of the old size
        state = optimizer.state.get(param, {}) if optimizer is not None else {}
        for key in MOMENTS:
            if key in state:
                state[key] = change(name, state[key], True)


def keep_gaussians(scene: GaussianScene, optimizer, keep: Tensor) -> None:
    """Keep the Gaussians at indices ``keep [M]`` (in that order), parameters and moments."""
    edit_gaussians(scene, optimizer, lambda name, t, moment: t.index_select(0, keep))


def add_gaussians(scene: GaussianScene, optimizer, new: dict[str, Tensor]) -> None:
    """Append Gaussians: ``new`` maps each parameter name to its rows; their moments start at 0."""
    edit_gaussians(scene, optimizer,
                   lambda name, t, moment: torch.cat([t, torch.zeros_like(new[name]) if moment else new[name]]))


def reset_opacities(scene: GaussianScene, optimizer, ceiling: float) -> None:
    """Cap every opacity at ``ceiling`` and forget the opacities' moments."""
    cap = logit(ceiling)

    def change(name, t, moment):
        if name != "opacity_logits":
            return t
        return torch.zeros_like(t) if moment else t.clamp_max(cap)

    edit_gaussians(scene, optimizer, change)


class Densifier:
    """Densifies and prunes ``scene`` at the cadence of ``cfg``; ``extent`` is the scene's size
    (world units: the radius of the training cameras around their centre, as 3DGS takes it).

    Use: :meth:`record` each rendered view (before ``backward``), then call :meth:`update` with
    the step (a training hook: it runs before the next step, when the gradients are there).
    :meth:`bind` the optimiser once it exists so that its moments follow the Gaussians. No
    autograd graph of an earlier render may be alive when the parameters change size (autograd
    remembers a parameter's shape while a graph holds it): the loop's hooks run between steps,
    when none is, and :meth:`update` drops the views it recorded before it changes anything.
    """

    def __init__(self, scene: GaussianScene, cfg: DensifyConfig, extent: float):
        self.scene, self.cfg, self.extent = scene, cfg, float(extent)
        self.optimizer: torch.optim.Optimizer | None = None
        self.pending: list[RasterOutput] = []
        self.resets = 0  # opacity resets so far (size pruning waits for the first)
        self.last_step = 0  # the step of the last update
        self.owed = False  # a densification is due and waits for views
        self._clear()

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def _clear(self) -> None:
        n, device = len(self.scene), self.scene.means.device
        self.grad_sum = torch.zeros(n, device=device)
        self.seen = torch.zeros(n, device=device)
        self.max_radii = torch.zeros(n, device=device)
        self.views = 0  # views recorded since the statistics started

    # ---------------------------------------------------------------------------- statistics
    def record(self, out: RasterOutput) -> None:
        """A view about to be back-propagated (its ``means2d`` gradient is read in :meth:`update`)."""
        self.pending.append(out)

    def observe(self, out: RasterOutput) -> None:
        """Accumulate the gradient statistics of one back-propagated view."""
        grad = out.means2d.grad
        if grad is None:
            return
        height, width = out.alpha.shape
        grad = grad.reshape(-1, 2) * grad.new_tensor([width / 2, height / 2])  # pixels -> NDC units
        visible = out.visible
        self.grad_sum += grad.norm(dim=-1) * visible
        self.seen += visible
        self.max_radii = torch.maximum(self.max_radii, out.radii.float() * visible)
        self.views += 1

    def state_dict(self) -> dict:
        return {"grad_sum": self.grad_sum, "seen": self.seen, "max_radii": self.max_radii, "resets": self.resets,
                "last_step": self.last_step, "views": self.views, "owed": self.owed}

    def load_state_dict(self, state: dict) -> None:
        device = self.scene.means.device
        self.grad_sum, self.seen = state["grad_sum"].to(device), state["seen"].to(device)
        self.max_radii, self.resets = state["max_radii"].to(device), int(state["resets"])
        self.last_step = int(state.get("last_step", 0))
        self.views, self.owed = int(state.get("views", 0)), bool(state.get("owed", False))

    # ------------------------------------------------------------------------------ changes
    def update(self, step: int) -> dict[str, int] | None:
        """Read the recorded views' gradients; densify, prune and reset when due: when ``step`` has
        passed a multiple of ``every`` (``reset_every``) since the last call, so a schedule paced by
        time, whose steps may jump, keeps its cadence. Returns counts of what changed (``cloned``,
        ``split``, ``pruned``, ``reset``), or None when nothing was due."""
        while self.pending:  # popped, so that no reference keeps a render's graph alive
            self.observe(self.pending.pop())
        c = self.cfg
        last, self.last_step = self.last_step, step
        if step < c.start or step >= c.stop or step == 0:
            return None

        def due(every: int) -> bool:  # a multiple of ``every`` reached since the last call (paced steps may skip)
            return step // every > last // every

        changes = None
        self.owed |= due(c.every)
        if self.owed and self.views >= c.min_views:
            changes = self.densify_and_prune()
            self.owed = False
        if c.reset_every and due(c.reset_every):
            reset_opacities(self.scene, self.optimizer, c.reset_opacity)
            self.resets += 1
            changes = {**(changes or {}), "reset": 1}
        return changes

    def densify_and_prune(self) -> dict[str, int]:
        """Clone and split where the mean gradient is high, then prune; statistics start afresh."""
        c, scene = self.cfg, self.scene
        with torch.no_grad():
            grads = self.grad_sum / self.seen.clamp_min(1)
            max_scale = scene.scales.max(1).values
            wanted = grads >= c.grad_threshold
            if c.max_gaussians is not None:
                wanted &= self._within_budget(grads, wanted, max_scale)
            small = max_scale <= c.dense_fraction * self.extent
            clone, split = wanted & small, wanted & ~small
            n = len(scene)
            params = dict(scene.named_parameters())
            new = {name: torch.cat([p[clone], *self._split(name, p, split)]) for name, p in params.items()}
            add_gaussians(scene, self.optimizer, new)
            grown = len(scene)
            drop = torch.zeros(grown, dtype=torch.bool, device=grads.device)
            drop[:n] = split  # the split originals go
            drop |= scene.opacities < c.min_opacity
            if self.resets:
                drop |= scene.scales.max(1).values > c.max_world_fraction * self.extent
                if c.max_screen_radius is not None:
                    drop[:n] |= self.max_radii > c.max_screen_radius
            keep_gaussians(scene, self.optimizer, (~drop).nonzero().squeeze(1))
        self._clear()
        return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(drop.sum() - split.sum())}

    def _within_budget(self, grads: Tensor, wanted: Tensor, max_scale: Tensor) -> Tensor:
        """``wanted`` cut to the highest gradients that keep the count within ``max_gaussians``
        (a clone or a split adds one Gaussian each)."""
        room = max(self.cfg.max_gaussians - len(self.scene), 0)
        if int(wanted.sum()) <= room:
            return wanted
        keep = torch.zeros_like(wanted)
        keep[torch.topk(torch.where(wanted, grads, torch.full_like(grads, -1.0)), room).indices] = True
        return keep

    def _split(self, name: str, p: Tensor, split: Tensor) -> list[Tensor]:
        """Rows of the two Gaussians each split one becomes: means sampled from the original, scales
        divided by 1.6 (0.8 x 2, the reference implementation's factor), the rest copied."""
        rows = p[split].repeat(2, *([1] * (p.dim() - 1)))
        if name == "means":
            scene = self.scene
            std = scene.scales[split].repeat(2, 1)
            rot = rotation_matrices(scene.quats[split]).repeat(2, 1, 1)
            return [rows + (rot @ (torch.randn_like(std) * std)[..., None])[..., 0]]
        if name == "log_scales":
            return [rows - math.log(1.6)]
        return [rows]
