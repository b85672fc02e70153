"""A trained field whose density and geometry features come from a baked lattice.

Colour stays the trained field's own colour head applied to the cached features, so view
dependence and per-image appearance codes render as they did; only the expensive part (the
hash-grid lookups and the density MLP) is replaced by one trilinear lookup. A field finer than
any affordable lattice (the fox's hash grid reaches 1024 cells across the cube) keeps its
textures with ``live_features``: the lattice gives density, and the few samples that get a
colour (render.shading's deferred shading) take their features from the trained field.
"""

from __future__ import annotations

from torch import Tensor

from ..fields.base import Field
from .lattice import BlockLattice


class BakedField(Field):
    """``source``'s colour head over ``lattice``'s raw density and features (static fields only);
    over ``source``'s own features at the coloured points when the lattice holds density only."""

    def __init__(self, source: Field, lattice: BlockLattice):
        super().__init__()
        self.source, self.lattice = source, lattice
        self.live_features = lattice.features.shape[1] == 0
        self.in_dim, self.geo_dim, self.appearance_dim = source.in_dim, source.geo_dim, source.appearance_dim

    def raw_density(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x [N, 3]`` field coordinates -> raw density ``[N]`` and features ``[N, geo_dim]``."""
        return self.lattice.lookup(x)

    def density_activation(self, raw: Tensor) -> Tensor:
        return self.source.density_activation(raw)

    def color(self, x: Tensor, d: Tensor | None, geo: Tensor, t: Tensor | None = None, **kwargs) -> Tensor:
        if self.live_features:
            geo = self.source.raw_density(x, t)[1]
        return self.source.color(x, d, geo, t, **kwargs)
