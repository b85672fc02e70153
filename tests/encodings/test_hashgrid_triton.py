"""The Triton hash-grid kernel against the PyTorch path, run on the CPU by Triton's interpreter.

Triton reads ``TRITON_INTERPRET`` when ``@triton.jit`` decorates a kernel, i.e. when the kernel
module is first imported. Setting it in the pytest process would leak into every later import
(the CUDA tests of the same session would then interpret too), so the kernel runs in one child
process, started with the variable set: it runs this file as a script, checks every case and
prints one JSON line of results; the tests below read them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch

import neuralfields
from neuralfields.encodings import HashGrid
from neuralfields.errors import NeuralFieldsError

# name: (in_dim, n_features, table dtype, value tolerance, gradient tolerance (rtol = atol))
CASES = {
    "2d": (2, 2, torch.float32, 1e-6, 1e-5),
    "3d": (3, 2, torch.float32, 1e-6, 1e-5),
    "3d-3features": (3, 3, torch.float32, 1e-6, 1e-5),
    "4d": (4, 2, torch.float32, 1e-6, 1e-5),
    "2d-float16": (2, 2, torch.float16, 1e-3, 1e-2),
    "3d-float16": (3, 2, torch.float16, 1e-3, 1e-2),
    "3d-bfloat16": (3, 4, torch.bfloat16, 1e-3, 2e-2),
}


def make_grid(in_dim: int, n_features: int, dtype: torch.dtype, backend: str) -> HashGrid:
    torch.manual_seed(0)
    g = HashGrid(in_dim, n_levels=6, n_features=n_features, log2_table=9 if in_dim < 4 else 11, base_res=2,
                 max_res=96, init_scale=1.0, backend=backend, dtype=dtype)
    assert g.dense.any() and not g.dense.all()  # dense and hashed levels both checked
    return g


def make_points(g: HashGrid) -> torch.Tensor:
    """Random points inside and just outside the cube, points on cell boundaries of every level,
    on the cube's faces and at its corners."""
    gen = torch.Generator().manual_seed(1)
    d = g.in_dim
    inside = torch.rand(96, d, generator=gen) * 2.2 - 1.1
    res = g.resolution.long()
    # Corner coordinates 2k / r - 1 of a random level per coordinate (exact where r is a power of 2).
    level = torch.randint(0, len(res), (96, d), generator=gen)
    k = (torch.rand(96, d, generator=gen) * (res[level] + 1)).floor()
    boundary = (2.0 * k / res[level] - 1.0).float()
    faces = torch.rand(48, d, generator=gen) * 2 - 1
    axis = torch.randint(0, d, (48,), generator=gen)
    faces[torch.arange(48), axis] = torch.tensor([-1.0, 1.0, -1.05, 1.05]).repeat(12)
    cube_corners = torch.tensor([[float(s) for s in f"{c:0{d}b}"] for c in range(1 << d)]) * 2 - 1
    return torch.cat([inside, boundary, faces, cube_corners, torch.zeros(1, d)])


def run_cases() -> dict[str, str]:
    """Every case's result, ``"ok"`` or what failed (in the interpreting child process)."""
    checks = {name: lambda spec=spec: compare(*spec) for name, spec in CASES.items()}
    checks["points-with-grad"] = points_with_grad
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc(limit=-3)
    return results


def compare(in_dim: int, n_features: int, dtype: torch.dtype, tol: float, grad_tol: float,
            device: str = "cpu") -> None:
    """Features and table gradients of the kernel against the torch path, on the same table."""
    torch_grid, triton_grid = (make_grid(in_dim, n_features, dtype, b).to(device) for b in ("torch", "triton"))
    x = make_points(torch_grid).to(device)
    weights = torch.randn(x.shape[0], torch_grid.out_dim, generator=torch.Generator().manual_seed(2)).to(device)
    ref, out = torch_grid(x), triton_grid(x)
    assert out.dtype == ref.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    (ref * weights).sum().backward()
    (out * weights).sum().backward()
    grad, ref_grad = triton_grid.embeddings.grad, torch_grid.embeddings.grad
    assert grad.dtype == ref_grad.dtype == dtype
    torch.testing.assert_close(grad.float(), ref_grad.float(), rtol=grad_tol, atol=grad_tol)


def points_with_grad() -> None:
    """Points that need a gradient (normals) take the torch path even with ``backend="triton"``."""
    torch_grid, triton_grid = (make_grid(3, 2, torch.float32, b) for b in ("torch", "triton"))
    x = make_points(torch_grid).requires_grad_(True)
    assert triton_grid.uses_triton(x.detach()) and not triton_grid.uses_triton(x)
    (ref,) = torch.autograd.grad(torch_grid(x).square().sum(), x)
    (grad,) = torch.autograd.grad(triton_grid(x).square().sum(), x)
    torch.testing.assert_close(grad, ref)
    with torch.no_grad():
        assert triton_grid.uses_triton(x)
    from neuralfields.encodings.kernels.hashgrid_triton import hash_grid_encode

    try:  # the kernel's own entry point refuses such points instead of dropping their gradient
        hash_grid_encode(x, triton_grid.embeddings, triton_grid.resolution, triton_grid.multipliers,
                         triton_grid.level_size, triton_grid.dense, triton_grid.level_offset)
    except ValueError as exc:
        assert "gradient with respect to the points" in str(exc)
    else:
        raise AssertionError("hash_grid_encode accepted points that need a gradient")


needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="triton is not installed (pip install 'neuralfields[kernels]')")


@pytest.fixture(scope="module")
def interpreted() -> dict[str, str]:
    # The child imports the same neuralfields as this process, and runs the torch path eagerly.
    package_root = str(Path(neuralfields.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, TRITON_INTERPRET="1", NEURALFIELDS_COMPILE="0", PYTHONPATH=path)
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_triton
@pytest.mark.parametrize("case", [*CASES, "points-with-grad"])
def test_triton_kernel_matches_the_torch_path(interpreted, case):
    assert interpreted[case] == "ok", interpreted[case]


@needs_triton
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", list(CASES))
def test_triton_kernel_on_cuda(case):
    """The compiled kernel itself (not the interpreter), and ``auto`` choosing it on CUDA."""
    compare(*CASES[case], device="cuda")
    assert HashGrid(3, n_levels=2, log2_table=8).cuda().uses_triton(torch.zeros(1, 3, device="cuda"))


def test_backend_choice_on_the_cpu():
    x = torch.rand(8, 3) * 2 - 1
    assert not HashGrid(3, n_levels=2, log2_table=8).uses_triton(x)  # auto: torch off CUDA
    assert not HashGrid(3, n_levels=2, log2_table=8, backend="torch").uses_triton(x)
    with pytest.raises(NeuralFieldsError, match="backend"):
        HashGrid(3, backend="cuda")


def test_half_table_on_the_torch_path_accumulates_in_float32():
    x = torch.rand(50, 3) * 2 - 1
    full = make_grid(3, 2, torch.float32, "torch")
    half = make_grid(3, 2, torch.float16, "torch")
    out = half(x)
    assert half.embeddings.dtype == torch.float16 and out.dtype == torch.float32
    with torch.no_grad():
        full.embeddings.copy_(half.embeddings.float())
    torch.testing.assert_close(out, full(x))
    out.sum().backward()
    assert half.embeddings.grad.dtype == torch.float16


if __name__ == "__main__":
    assert os.environ.get("TRITON_INTERPRET") == "1", "run by the tests with TRITON_INTERPRET=1"
    print(json.dumps(run_cases()))
