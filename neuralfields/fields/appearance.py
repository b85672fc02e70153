"""Per-image appearance codes (NeRF-W's appearance embedding, nerfacto's ``appearance_embedding``).

Photos of one scene differ in exposure and white balance. A field whose colour head reads a
small code per training image explains those differences with the code instead of with
floaters. Codes are looked up by the index of the image a ray came from; rays of no training
image (novel views, held-out images) get the mean code, or a code set with :meth:`AppearanceCodes.fix`
(the NeRF-W protocol optimises one on half of a held-out image).

The mean code alone is not bound to look like any photo: as codes spread out, the colour head's
answer to their mean drifts (on the cup capture, a blue cast that lowered held-out PSNR while
the views grew sharper; docs/real_scenes.md). So a fraction ``dropout`` of training rays
(grad enabled, module in training mode) get the mean code instead of their own: the mean code is
trained to give the appearance that best fits all photos at once, which is what a novel view
should show.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AppearanceCodes(nn.Module):
    """``n_images`` codes of ``dim`` numbers; ``forward(image_ids [R] or None, n) -> [n, dim]``."""

    def __init__(self, n_images: int, dim: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = float(dropout)
        self.codes = nn.Embedding(max(int(n_images), 1), dim)
        nn.init.normal_(self.codes.weight, std=0.01)
        self.fixed: Tensor | None = None  # [dim] code for rays of no training image

    @property
    def dim(self) -> int:
        return self.codes.embedding_dim

    def default_code(self) -> Tensor:
        """The code of rays that come from no training image: the fixed one, else the mean."""
        return self.fixed if self.fixed is not None else self.codes.weight.mean(0)

    def fix(self, code: Tensor | None) -> None:
        """Use ``code [dim]`` for rays of no training image (None: back to the mean code)."""
        self.fixed = code

    def forward(self, image_ids: Tensor | None, n: int) -> Tensor:
        default = self.default_code()
        if image_ids is None:
            return default.expand(n, -1)
        known = image_ids >= 0
        if self.dropout > 0 and self.training and torch.is_grad_enabled():
            known = known & (torch.rand(known.shape, device=known.device) >= self.dropout)
        codes = self.codes(image_ids.clamp(0, self.codes.num_embeddings - 1))
        return torch.where(known[:, None], codes, default.expand(n, -1))
