"""Multiresolution hash encoding (Instant-NGP, Müller et al. 2022) in pure PyTorch.

Level ``l`` has resolution ``floor(base_res * b^l)`` with ``b`` chosen so the last level reaches
``max_res``. A level whose dense grid fits in the table is indexed densely (no collisions);
finer levels hash the integer corner coordinates with the paper's primes into a table of
``2^log2_table`` entries. Corner features are blended by D-linear interpolation.

All levels are gathered in one ``embedding_bag`` call (a fused gather + weighted sum whose
backward is a single scatter), which is several times faster on the CPU than indexing a
``[N, L, 2^D, F]`` tensor and summing. On CUDA a fused Triton kernel
(:mod:`.kernels.hashgrid_triton`) computes the same rows and weights per point without
materialising them; ``backend`` picks between the two.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..compiling import maybe_compile
from ..errors import NeuralFieldsError
from . import kernels

PRIMES = (1, 2654435761, 805459861, 3674653429)
BACKENDS = ("auto", "torch", "triton")


class HashGrid(nn.Module):
    """``x [N, D]`` in ``[-1, 1]^D`` (clamped there) -> features ``[N, n_levels * n_features]``.

    Level ``l`` spans the cube with ``resolution[l]`` cells per axis, so a point's grid position
    is ``(x + 1) / 2 * resolution``: the renderer's coordinates go in as they are.

    ``backend``: ``"torch"`` (the reference, and the CPU path), ``"triton"`` (the fused kernel of
    :mod:`.kernels.hashgrid_triton`), or ``"auto"``: the kernel for float32 points on CUDA when
    Triton imports, else torch. Points that need a gradient (normals by autograd) always take the
    torch path: the kernel differentiates the table only. ``dtype`` stores the table in another
    type (``torch.float16``/``bfloat16`` halve its memory); both paths accumulate in float32.
    """

    def __init__(self, in_dim: int = 3, n_levels: int = 16, n_features: int = 2, log2_table: int = 19,
                 base_res: int = 16, max_res: int = 2048, init_scale: float = 1e-4, backend: str = "auto",
                 dtype: torch.dtype | None = None):
        super().__init__()
        if in_dim > len(PRIMES):
            raise ValueError(f"hash grid supports at most {len(PRIMES)} input dimensions")
        if backend not in BACKENDS:
            raise NeuralFieldsError(f"hash grid backend {backend!r} (field.options.backend): expected one of "
                                    f"{', '.join(BACKENDS)}")
        self.in_dim, self.n_levels, self.n_features, self.backend = in_dim, n_levels, n_features, backend
        self.out_dim = n_levels * n_features
        growth = math.exp((math.log(max_res) - math.log(base_res)) / max(n_levels - 1, 1))
        table = 1 << log2_table
        res, sizes, dense = [], [], []
        for level in range(n_levels):
            r = int(math.floor(base_res * growth**level))
            cells = (r + 1) ** in_dim
            res.append(r)
            dense.append(cells <= table)
            sizes.append(min(cells, table))
        offsets = [0, *itertools.accumulate(sizes)]
        self.register_buffer("resolution", torch.tensor(res, dtype=torch.float32), persistent=False)
        self.register_buffer("level_offset", torch.tensor(offsets[:-1], dtype=torch.int32), persistent=False)
        self.register_buffer("level_size", torch.tensor(sizes, dtype=torch.int32), persistent=False)
        self.register_buffer("dense", torch.tensor(dense), persistent=False)
        # Dense strides (r+1)^k per level and dimension; hashed levels multiply by primes instead.
        if offsets[-1] >= 1 << 31:
            raise ValueError(f"hash grid of {offsets[-1]} rows: more than 32-bit indices can address")
        # Indices are int32: CPUs multiply 32-bit integers in vector registers but emulate 64-bit
        # products. A prime above 2^31 is stored as its two's-complement int32; the wrapped product
        # has the same low 32 bits as the exact one, and only the low log2_table bits are kept.
        strides = torch.tensor([[(r + 1) ** k for k in range(in_dim)] for r in res], dtype=torch.int64)
        primes = torch.tensor([p - (1 << 32) if p >= 1 << 31 else p for p in PRIMES[:in_dim]], dtype=torch.int64)
        multipliers = torch.where(torch.tensor(dense)[:, None], strides, primes.expand(n_levels, in_dim))
        self.register_buffer("multipliers", multipliers.int(), persistent=False)
        corners = torch.tensor(list(itertools.product((0, 1), repeat=in_dim)), dtype=torch.int32).flip(-1)
        self.register_buffer("corners", corners, persistent=False)  # [2^D, D]
        init = torch.empty(offsets[-1], n_features).uniform_(-init_scale, init_scale)
        self.embeddings = nn.Parameter(init if dtype is None else init.to(dtype))

    def extra_repr(self) -> str:
        r = self.resolution.long().tolist()
        return f"in_dim={self.in_dim}, levels={self.n_levels}, features={self.n_features}, res={r[0]}..{r[-1]}, entries={self.embeddings.shape[0]}"

    def corner_indices(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table rows and interpolation weights, both ``[N, L, 2^D]``, for points ``x [N, D]``."""
        return _corner_indices(x, self.resolution, self.multipliers, self.corners, self.level_size, self.dense,
                               self.level_offset)

    def uses_triton(self, x: Tensor) -> bool:
        """Whether :meth:`forward` runs the Triton kernel on ``x`` (see the class docstring)."""
        if self.backend == "torch" or (x.requires_grad and torch.is_grad_enabled()):
            return False
        if self.backend == "triton":
            return True
        return (x.is_cuda and x.dtype == torch.float32 and self.embeddings.dtype in kernels.TABLE_DTYPES
                and kernels.triton_available())

    def forward(self, x: Tensor) -> Tensor:
        if self.uses_triton(x):
            from .kernels.hashgrid_triton import hash_grid_encode

            return hash_grid_encode(x, self.embeddings, self.resolution, self.multipliers, self.level_size, self.dense,
                                    self.level_offset)
        n = x.shape[0]
        idx, w = self.corner_indices(x)
        k = idx.shape[-1]
        table = self.embeddings
        if table.dtype != w.dtype:  # a float16/bfloat16 table: gather and sum in the points' precision
            table = table.to(w.dtype)
        out = WeightedGather.apply(table, idx.reshape(-1, k), w.reshape(-1, k))
        return out.reshape(n, self.out_dim)


def finest_resolution(module: nn.Module) -> int:
    """The finest resolution (cells across the cube) among ``module``'s hash grids; 0 without one."""
    return max((int(m.resolution.max()) for m in module.modules() if isinstance(m, HashGrid)), default=0)


def corner_indices(x: Tensor, resolution: Tensor, multipliers: Tensor, corners: Tensor, level_size: Tensor,
                   dense: Tensor, level_offset: Tensor) -> tuple[Tensor, Tensor]:
    """Table rows (int32) and D-linear weights ``[N, L, 2^D]`` of points ``x [N, D]`` (see :class:`HashGrid`'s buffers).

    A free function of tensors, so one compiled graph serves every grid of the same dimension
    (a bound method would be recompiled per instance until torch.compile's cache limit).
    Written without data-dependent branches so ``torch.compile`` fuses it into one loop:
    eagerly, each of these elementwise ops streams the whole ``[N, L, 2^D]`` tensor.
    """
    # Halving is exact in binary floating point: bitwise the same positions as clamping
    # (x + 1) / 2 to [0, 1] and scaling by the resolution.
    pos = (x.clamp(-1.0, 1.0) + 1.0)[:, None, :] * (0.5 * resolution)[None, :, None]  # [N, L, D]
    base = pos.floor()
    frac = pos - base
    base = base.int()
    dense_key = hash_key = weights = None
    for d in range(x.shape[1]):
        bit = corners[:, d]  # [2^D]
        k = (base[..., d : d + 1] + bit) * multipliers[None, :, d : d + 1]  # [N, L, 2^D]
        f = frac[..., d : d + 1]
        w = torch.where(bit.bool(), f, 1.0 - f)
        if d == 0:
            dense_key, hash_key, weights = k, k, w
        else:
            dense_key, hash_key, weights = dense_key + k, hash_key ^ k, weights * w
    size = level_size[None, :, None]
    # A dense corner past the far edge has weight 0; clamping just keeps its row in range.
    idx = torch.where(dense[None, :, None], torch.minimum(dense_key, size - 1), hash_key & (size - 1))
    return idx + level_offset[None, :, None], weights


_corner_indices = maybe_compile(corner_indices)


class WeightedGather(torch.autograd.Function):
    """``out[m] = sum_k w[m, k] * table[idx[m, k]]`` with a scatter-add backward.

    ``embedding_bag`` computes the forward well but its backward sorts the indices, which costs
    more on the CPU than accumulating directly with ``index_add_``.
    """

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(table, idx, w)
        return F.embedding_bag(idx, table, per_sample_weights=w, mode="sum")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        table, idx, w = ctx.saved_tensors
        grad_table = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_table = _scatter_grad(idx, w, grad_out, table)
        if ctx.needs_input_grad[2]:
            grad_w = (table[idx] * grad_out[:, None, :]).sum(-1)
        return grad_table, None, grad_w


def _scatter_grad_eager(idx: Tensor, w: Tensor, grad_out: Tensor, table: Tensor) -> Tensor:
    """``d loss / d table``: each output row's gradient spread over its corners by their weights."""
    contrib = (w[..., None] * grad_out[:, None, :]).reshape(-1, table.shape[1])
    return torch.zeros_like(table).index_add_(0, idx.reshape(-1), contrib)


_scatter_grad = maybe_compile(_scatter_grad_eager)
