"""The Gaussian scene: what a splat student learns and what splat viewers draw.

Parameters are stored unconstrained, with the reference implementation's activations, so that
the ``.ply`` layout (:mod:`.io`) holds them as they are:

- ``means [N, 3]`` world positions;
- ``log_scales [N, 3]`` per-axis standard deviations ``exp(log_scales)``;
- ``quats [N, 4]`` rotations ``(w, x, y, z)``, normalised where used (so any non-zero value is valid);
- ``opacity_logits [N]`` with opacity ``sigmoid(opacity_logits)``;
- ``sh_dc [N, 1, 3]`` and ``sh_rest [N, K - 1, 3]`` spherical-harmonic colour (:mod:`.sh`), two
  tensors because 3DGS trains the view-dependent bands 20x slower than the base colour.

The number of Gaussians changes while training (:mod:`.densify`): parameters keep their identity
(the optimiser holds them) and change size in place; :meth:`GaussianScene.load_state_dict`
resizes them to the checkpoint before loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .sh import MAX_DEGREE, rgb_to_sh, sh_bases


@dataclass
class Gaussians:
    """Activated Gaussians, what a rasteriser reads (every tensor on one device).

    Attributes:
        means: ``[N, 3]``; quats: ``[N, 4]`` (w, x, y, z), not necessarily unit;
        scales: ``[N, 3]`` standard deviations; opacities: ``[N]`` in (0, 1);
        sh: ``[N, K, 3]`` colour coefficients; degree: the bands in use (``(degree + 1)^2 <= K``).
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor
    degree: int

    def __len__(self) -> int:
        return self.means.shape[0]


def rotation_matrices(quats: Tensor) -> Tensor:
    """``[N, 4]`` quaternions (w, x, y, z), any non-zero length -> ``[N, 3, 3]`` rotations.

    Written as ``I + 2 w [v]x + 2 [v]x^2`` for the unit quaternion ``(w, v)`` so that autograd
    sees one small expression (the rasteriser differentiates through it).
    """
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    zero = torch.zeros_like(w)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(-1, 3, 3)  # [v]x
    eye = torch.eye(3, dtype=q.dtype, device=q.device)
    return eye + 2 * w[:, None, None] * cross + 2 * cross @ cross


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """World covariances ``R S S^T R^T`` ``[N, 3, 3]`` of rotations ``[N, 4]`` and scales ``[N, 3]``."""
    m = rotation_matrices(quats) * scales[:, None, :]
    return m @ m.transpose(1, 2)


def spacing_scales(points: np.ndarray, neighbours: int = 1, factor: float = 0.5) -> np.ndarray:
    """``[P]`` a Gaussian's size from local point spacing: ``factor`` x the mean distance to the
    ``neighbours`` nearest other points, bounded below by a quarter of the median (duplicate
    points would otherwise give invisible Gaussians)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    if len(points) <= neighbours:
        return np.full(len(points), 1e-3)
    dist = cKDTree(points).query(points, k=neighbours + 1)[0][:, 1:].mean(1)
    floor = max(float(np.median(dist)) * 0.25, 1e-6)
    return factor * np.maximum(dist, floor)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


class GaussianScene(nn.Module):
    """``N`` Gaussians with colour up to SH degree ``max_degree``; ``active_degree`` (a buffer, so
    checkpoints keep it) is the degree rendered now, raised while training (3DGS's progressive SH)."""

    def __init__(self, means: Tensor, log_scales: Tensor, quats: Tensor, opacity_logits: Tensor, sh: Tensor,
                 active_degree: int | None = None):
        super().__init__()
        k = sh.shape[1]
        self.max_degree = int(round(math.sqrt(k))) - 1
        if sh_bases(self.max_degree) != k or self.max_degree > MAX_DEGREE:
            raise ValueError(f"{k} SH coefficients per channel is not (degree + 1)^2 for a degree up to {MAX_DEGREE}")
        self.means = nn.Parameter(means.float().contiguous())
        self.log_scales = nn.Parameter(log_scales.float().contiguous())
        self.quats = nn.Parameter(quats.float().contiguous())
        self.opacity_logits = nn.Parameter(opacity_logits.float().contiguous())
        self.sh_dc = nn.Parameter(sh[:, :1].float().contiguous())
        self.sh_rest = nn.Parameter(sh[:, 1:].float().contiguous())
        degree = self.max_degree if active_degree is None else min(active_degree, self.max_degree)
        self.register_buffer("active_degree", torch.tensor(degree, dtype=torch.int64))

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_points(cls, points, colours, scales=None, opacity: float = 0.1, max_degree: int = MAX_DEGREE,
                    active_degree: int = 0) -> "GaussianScene":
        """Round Gaussians at ``points [P, 3]`` with colours ``[P, 3]`` in [0, 1].

        ``scales``: ``[P]`` standard deviations (default :func:`spacing_scales` over the 3 nearest
        neighbours, as 3DGS initialises from a point cloud); ``opacity`` in (0, 1).
        """
        pts = torch.as_tensor(np.asarray(points), dtype=torch.float32).reshape(-1, 3)
        rgb = torch.as_tensor(np.asarray(colours), dtype=torch.float32).reshape(-1, 3)
        if scales is None:
            scales = spacing_scales(pts.numpy(), neighbours=3, factor=1.0)
        std = torch.as_tensor(np.asarray(scales), dtype=torch.float32).reshape(-1, 1).expand(len(pts), 3)
        n = len(pts)
        sh = torch.zeros(n, sh_bases(max_degree), 3)
        sh[:, 0] = rgb_to_sh(rgb)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1
        return cls(pts, std.clamp_min(1e-7).log(), quats, torch.full((n,), logit(opacity)), sh, active_degree)

    # ------------------------------------------------------------------------------- reading
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def scales(self) -> Tensor:
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.opacity_logits)

    @property
    def sh(self) -> Tensor:
        """``[N, K, 3]`` every colour coefficient."""
        return torch.cat([self.sh_dc, self.sh_rest], 1)

    def gaussians(self) -> Gaussians:
        """The activated Gaussians at the active SH degree (differentiable in every parameter)."""
        return Gaussians(self.means, self.quats, self.scales, self.opacities, self.sh, int(self.active_degree))

    def raise_degree(self) -> None:
        """One more SH band, up to ``max_degree``."""
        self.active_degree.fill_(min(int(self.active_degree) + 1, self.max_degree))

    def param_groups(self, lr: float = 1.0, weight_decay: float = 0.0, extent: float = 1.0) -> list[dict]:
        """Adam groups with the reference implementation's rates times ``lr``; positions move at a
        rate proportional to the scene ``extent`` (world units), so a scene's scale does not matter.
        No weight decay: it would pull opacities and colours towards 0.5 for no reason."""
        rates = {"means": 1.6e-4 * extent, "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20, "opacity_logits": 5e-2,
                 "log_scales": 5e-3, "quats": 1e-3}
        return [{"params": [getattr(self, name)], "lr": rate * lr, "name": name} for name, rate in rates.items()]

    # ------------------------------------------------------------------------------- loading
    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        """Load a checkpoint of any size: each parameter takes the saved shape first."""
        for name, param in self.named_parameters():
            if name in state:
                param.data = param.data.new_empty(state[name].shape)
        return super().load_state_dict(state, strict=strict, assign=assign)

    @classmethod
    def from_state_dict(cls, state: dict) -> "GaussianScene":
        """A scene of the size and degree a state dict holds, loaded from it."""
        sh = torch.cat([state["sh_dc"], state["sh_rest"]], 1)
        scene = cls(state["means"], state["log_scales"], state["quats"], state["opacity_logits"], sh)
        scene.load_state_dict(state)
        return scene
