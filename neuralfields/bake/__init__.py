"""Baked fields: a trained static field cached on a block-sparse lattice for fast rendering.

``build`` chooses the blocks and fills the lattice, ``lattice`` looks values up, ``field`` and
``sampler`` render from it through the ordinary renderer, ``store`` ties bake files to their
checkpoints. See docs/bake.md.
"""

from .build import BakeConfig, bake
from .field import BakedField
from .lattice import BlockLattice
from .sampler import BakedSampler, MarchConfig
from .store import bake_path, bake_run, baked_model, read_bake, fast_model

__all__ = ["BakeConfig", "BakedField", "BakedSampler", "BlockLattice", "MarchConfig", "bake", "bake_path",
           "bake_run", "baked_model", "fast_model", "read_bake"]
