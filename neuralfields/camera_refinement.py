"""Per-image camera refinement: a learned SE(3) correction of each training camera's pose.

Poses of real captures come from COLMAP or a phone's tracking and are off by a fraction of a
degree or of a centimetre; a field trained on them blurs what the images disagree on. As
nerfstudio's camera optimiser (nerfacto's ``SO3xR3`` mode), each training image gets six numbers,
a rotation as an axis-angle vector and a translation, both in world axes, that start at zero and
are trained with the field (their own learning rate and a small weight decay, which keeps them
from absorbing what the field should learn). The rotation turns the ray directions about the
camera centre and the translation moves the centre; held-out views keep their given poses.

When it is on (``train.camera_refinement``): ``on``, ``off``, or ``auto``, which refines the
cameras of photographs (COLMAP, LLFF, ``process`` output, instant-ngp and nerfstudio folders of
photos without alpha) and leaves synthetic renders alone (the blender layout, D-NeRF, images with
an alpha channel): their poses are exact, and refinement could only trade them for the field's
errors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import NeuralFieldsError

REFINEMENT_CHOICES = ("auto", "on", "off")


def refine_cameras(setting: str, photographs: bool) -> bool:
    """Whether a run refines its training cameras: ``setting`` (``auto | on | off``) and whether
    the training images are photographs (:attr:`neuralfields.scene_model.SceneInfo.photographs`)."""
    if setting not in REFINEMENT_CHOICES:
        raise NeuralFieldsError(f"train.camera_refinement must be one of {', '.join(REFINEMENT_CHOICES)}, got '{setting}'")
    return setting == "on" or (setting == "auto" and photographs)


def axis_angle_to_matrix(v: Tensor) -> Tensor:
    """Rotation matrices ``[N, 3, 3]`` of axis-angle vectors ``v [N, 3]`` (Rodrigues), smooth at
    zero: the series of ``sin(t)/t`` and ``(1 - cos(t))/t^2`` stand in for small angles, where
    the exact forms divide zero by zero (and their gradients would be NaN)."""
    t2 = (v * v).sum(-1, keepdim=True)[..., None]  # [N, 1, 1]
    small = t2 < 1e-8
    t = t2.clamp_min(1e-8).sqrt()
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24, (1 - torch.cos(t)) / t2.clamp_min(1e-8))
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(k)
    return eye + a * k + b * (k @ k)


class CameraCorrections(nn.Module):
    """Learned pose corrections of ``n`` training cameras.

    Attributes:
        delta: ``[n, 6]`` per image: axis-angle rotation (radians, world axes) and translation
            (scene units), zero at the start (the given poses).
    """

    def __init__(self, n: int):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(n, 6))

    def __len__(self) -> int:
        return self.delta.shape[0]

    def matrices(self) -> tuple[Tensor, Tensor]:
        """Rotations ``[n, 3, 3]`` and translations ``[n, 3]`` of every image."""
        return axis_angle_to_matrix(self.delta[:, :3]), self.delta[:, 3:]

    def apply(self, image_ids: Tensor, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        """Corrected rays: ``origins, dirs [R, 3]`` of images ``image_ids [R]`` (int64; ``-1``: a ray
        of no training image, left as it is). Differentiable in :attr:`delta`; no host reads."""
        rotations, translations = self.matrices()
        known = image_ids >= 0
        ids = image_ids.clamp_min(0)
        turned = torch.einsum("rij,rj->ri", rotations[ids], dirs)
        moved = origins + translations[ids]
        mask = known[:, None]
        return torch.where(mask, moved, origins), torch.where(mask, turned, dirs)

    def c2w(self, c2w: Tensor) -> Tensor:
        """The refined camera-to-world matrices ``[n, 3, 4]`` of the given ones ``c2w [n, 3, 4]``."""
        rotations, translations = self.matrices()
        r = rotations.to(c2w) @ c2w[:, :, :3]
        return torch.cat([r, (c2w[:, :, 3] + translations.to(c2w))[..., None]], -1)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        return [{"params": [self.delta], "lr": lr, "weight_decay": weight_decay}]
