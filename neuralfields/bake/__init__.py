"""Baked fields: a trained static field cached on a block-sparse lattice for fast rendering.

``build`` chooses the blocks and fills the lattice, ``lattice`` looks values up, ``field``
renders from it through the ordinary renderer; ``placement`` says how the run's sampler renders
baked (``sampler`` marches the lattice, ``proposal`` caches proposal networks on dense grids);
``store`` ties bake files to their checkpoints. See docs/bake.md.
"""

from .build import Bake, BakeConfig, BakeProgress, bake, expected_nbytes
from .field import BakedField
from .lattice import BlockLattice
from .sampler import BakedSampler, MarchConfig
from .store import bake_path, bake_run, baked_model, read_bake, fast_model

__all__ = ["Bake", "BakeConfig", "BakeProgress", "BakedField", "BakedSampler", "BlockLattice", "MarchConfig", "bake",
           "bake_path", "bake_run", "baked_model", "expected_nbytes", "fast_model", "read_bake"]
