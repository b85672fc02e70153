"""The multiresolution hash encoding as one fused Triton kernel (forward gather, backward scatter).

One program handles ``BLOCK`` points: it loops over the levels and, per level, over the ``2^D``
corners of each point's cell, computing the corner's table row and D-linear weight in registers
and gathering (forward) or scattering (backward) its features. Nothing of shape
``[N, L, 2^D]`` is ever stored, unlike the PyTorch path's ``corner_indices`` + ``embedding_bag``.

The arithmetic is that of :func:`neuralfields.encodings.hashgrid.corner_indices`, step by step:

* position ``(clamp(x, -1, 1) + 1) * (0.5 * resolution)`` in float32 (halving is exact, so the
  product is bitwise the torch path's), cell ``floor``, fraction ``pos - floor(pos)``;
* per dimension ``k_d = (cell_d + bit_d) * multiplier[l, d]`` in int32 with wrap-around (the
  grid's ``multipliers`` buffer: dense strides, or the primes as two's-complement int32);
* row ``min(sum_d k_d, size - 1)`` on dense levels, ``(xor_d k_d) & (size - 1)`` on hashed ones,
  plus the level's offset; weight ``prod_d (bit_d ? frac_d : 1 - frac_d)``.

Features are read in the table's type (float32, float16 or bfloat16) and accumulated in float32;
the output is float32. The backward adds ``grad_out * weight`` to a float32 gradient with atomic
adds and casts it to the table's type at the end. There is no gradient with respect to the
points: :class:`~neuralfields.encodings.hashgrid.HashGrid` sends points that need one (normals by
autograd) to its PyTorch path.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import TABLE_DTYPES

BLOCK = 128  # points per program; not tuned (no GPU measured yet)
NUM_WARPS = 4
# Said explicitly (Triton 3.9 warns while its default is changing): fusing ``acc + w * feature``
# into one FMA only rounds less; the positions, cells and weights have no product-plus-sum to fuse.
LAUNCH_OPTIONS = {"enable_fp_fusion": True} if int(triton.__version__.split(".")[0]) >= 3 else {}


@triton.jit
def _axis(x_ptr, n, live, d: tl.constexpr, D: tl.constexpr):
    """Coordinate ``d`` of the points, clamped to ``[-1, 1]`` (zeros for an axis the grid lacks)."""
    if d < D:
        x = tl.load(x_ptr + n * D + d, mask=live, other=0.0)
        x = tl.minimum(tl.maximum(x, -1.0), 1.0)
    else:
        x = tl.zeros(n.shape, dtype=tl.float32)
    return x


@triton.jit
def _cell(x, half_resolution, multiplier_ptr, level, d: tl.constexpr, D: tl.constexpr):
    """Cell (int32), fraction and multiplier of axis ``d`` at one level (multiplier 0 past ``D``)."""
    pos = (x + 1.0) * half_resolution
    cell = tl.floor(pos)
    if d < D:
        multiplier = tl.load(multiplier_ptr + level * D + d)
    else:
        multiplier = 0
    return cell.to(tl.int32), pos - cell, multiplier


@triton.jit
def _corner(corner: tl.constexpr, D: tl.constexpr, c0, c1, c2, c3, f0, f1, f2, f3, m0, m1, m2, m3,
            dense, size, offset):
    """Table rows (int64) and weights ``[BLOCK]`` of corner ``corner`` (bit ``d``: +1 along axis ``d``)."""
    b0: tl.constexpr = corner & 1
    b1: tl.constexpr = (corner >> 1) & 1
    b2: tl.constexpr = (corner >> 2) & 1
    b3: tl.constexpr = (corner >> 3) & 1
    k0 = (c0 + b0) * m0  # int32 products wrap like the torch path's
    k1 = (c1 + b1) * m1
    k2 = (c2 + b2) * m2
    k3 = (c3 + b3) * m3
    row = tl.where(dense, tl.minimum(k0 + k1 + k2 + k3, size - 1), (k0 ^ k1 ^ k2 ^ k3) & (size - 1))
    w = f0 if b0 else 1.0 - f0
    if D > 1:
        w = w * (f1 if b1 else 1.0 - f1)
    if D > 2:
        w = w * (f2 if b2 else 1.0 - f2)
    if D > 3:
        w = w * (f3 if b3 else 1.0 - f3)
    return (row + offset).to(tl.int64), w


@triton.jit
def _hash_grid_kernel(x_ptr, table_ptr, values_ptr, resolution_ptr, multiplier_ptr, size_ptr, dense_ptr, offset_ptr,
                      n_points, n_levels, D: tl.constexpr, F: tl.constexpr, FP: tl.constexpr, BLOCK: tl.constexpr,
                      BACKWARD: tl.constexpr):
    """Forward: ``values[n, l*F:(l+1)*F] = sum_c w * table[row]``. Backward: ``table[row] += w * values[n, l]``
    (``table_ptr`` is then the float32 gradient and ``values_ptr`` the output's gradient)."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = n < n_points
    feats = tl.arange(0, FP)
    fmask = live[:, None] & (feats[None, :] < F)
    x0 = _axis(x_ptr, n, live, 0, D)
    x1 = _axis(x_ptr, n, live, 1, D)
    x2 = _axis(x_ptr, n, live, 2, D)
    x3 = _axis(x_ptr, n, live, 3, D)
    for level in range(n_levels):
        half = 0.5 * tl.load(resolution_ptr + level)
        c0, f0, m0 = _cell(x0, half, multiplier_ptr, level, 0, D)
        c1, f1, m1 = _cell(x1, half, multiplier_ptr, level, 1, D)
        c2, f2, m2 = _cell(x2, half, multiplier_ptr, level, 2, D)
        c3, f3, m3 = _cell(x3, half, multiplier_ptr, level, 3, D)
        dense = tl.load(dense_ptr + level) != 0
        size = tl.load(size_ptr + level)
        offset = tl.load(offset_ptr + level)
        values = values_ptr + n[:, None] * (n_levels * F) + level * F + feats[None, :]
        if BACKWARD:
            grad = tl.load(values, mask=fmask, other=0.0).to(tl.float32)
        else:
            acc = tl.zeros([BLOCK, FP], dtype=tl.float32)
        for corner in tl.static_range(1 << D):
            row, w = _corner(corner, D, c0, c1, c2, c3, f0, f1, f2, f3, m0, m1, m2, m3, dense, size, offset)
            rows = table_ptr + row[:, None] * F + feats[None, :]
            if BACKWARD:
                tl.atomic_add(rows, w[:, None] * grad, mask=fmask, sem="relaxed")
            else:
                acc += w[:, None] * tl.load(rows, mask=fmask, other=0.0).to(tl.float32)
        if not BACKWARD:
            tl.store(values, acc, mask=fmask)


def _launch(x: Tensor, table: Tensor, values: Tensor, grid: tuple[Tensor, ...], backward: bool) -> None:
    n, d = x.shape
    resolution, multipliers, level_size, dense, level_offset = grid
    f = table.shape[1]
    device = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with device:
        _hash_grid_kernel[(triton.cdiv(n, BLOCK),)](
            x, table, values, resolution, multipliers, level_size, dense, level_offset, n, resolution.shape[0],
            D=d, F=f, FP=triton.next_power_of_2(f), BLOCK=BLOCK, BACKWARD=backward,
            num_warps=NUM_WARPS, **LAUNCH_OPTIONS)


class HashGridEncode(torch.autograd.Function):
    """``x [N, D]``, table ``[T, F]`` and the grid's buffers -> features ``[N, L * F]`` (float32).

    Differentiable with respect to the table only.
    """

    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, *grid: Tensor) -> Tensor:
        out = x.new_empty(x.shape[0], grid[0].shape[0] * table.shape[1], dtype=torch.float32)
        if x.shape[0]:
            _launch(x, table, out, grid, backward=False)
        ctx.save_for_backward(x, *grid)
        ctx.table_shape, ctx.table_dtype = table.shape, table.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        x, *grid = ctx.saved_tensors
        grad_table = None
        if ctx.needs_input_grad[1]:
            grad_table = torch.zeros(ctx.table_shape, dtype=torch.float32, device=x.device)
            if x.shape[0]:
                _launch(x, grad_table, grad_out.float().contiguous(), grid, backward=True)
            grad_table = grad_table.to(ctx.table_dtype)
        return (None, grad_table) + (None,) * len(grid)


@torch.compiler.disable  # a compiled field calls the kernel as it is, outside its graph
def hash_grid_encode(x: Tensor, table: Tensor, resolution: Tensor, multipliers: Tensor, level_size: Tensor,
                     dense: Tensor, level_offset: Tensor) -> Tensor:
    """The hash encoding of ``x [N, D]`` (float32 positions; D at most 4) with
    :class:`~neuralfields.encodings.hashgrid.HashGrid`'s table and buffers, computed by the kernel."""
    if x.dim() != 2 or not 1 <= x.shape[1] <= 4 or x.shape[1] != multipliers.shape[1]:
        raise ValueError(f"points of shape {tuple(x.shape)} for a {multipliers.shape[1]}-D hash grid")
    if x.requires_grad and torch.is_grad_enabled():
        raise ValueError("the Triton hash grid has no gradient with respect to the points: use the torch path")
    if table.dtype not in TABLE_DTYPES:
        raise TypeError(f"the Triton hash grid reads tables of {', '.join(map(str, TABLE_DTYPES))}, not {table.dtype}")
    return HashGridEncode.apply(x.float().contiguous(), table.contiguous(), resolution.float().contiguous(),
                                multipliers.int().contiguous(), level_size.int().contiguous(), dense.contiguous(),
                                level_offset.int().contiguous())
