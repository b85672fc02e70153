import itertools
import math

import torch

from neuralfields.encodings import HashGrid
from neuralfields.encodings.hashgrid import PRIMES
from neuralfields.fields import build_field
from neuralfields.run.metrics import psnr


def brute_force(g: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """Direct per-corner evaluation of the hash encoding at ``x`` in ``[-1, 1]^D``, computed the way
    the grid was before it read those coordinates itself: remapped to ``[0, 1]`` first, and with
    exact 64-bit products of the paper's primes (the grid itself wraps them in 32 bits)."""
    strides = torch.stack([(g.resolution.long() + 1) ** k for k in range(g.in_dim)], -1)  # [L, D]
    primes = torch.tensor(PRIMES[: g.in_dim], dtype=torch.int64).expand_as(strides)
    multipliers = torch.where(g.dense[:, None], strides, primes)
    level_size, level_offset = g.level_size.long(), g.level_offset.long()
    unit = (x + 1.0) * 0.5
    pos = unit.clamp(0, 1)[:, None, :] * g.resolution[None, :, None]
    base = pos.floor().long()
    frac = pos - pos.floor()
    out = 0
    for bits in itertools.product((0, 1), repeat=g.in_dim):
        c = torch.tensor(bits)
        corner = base + c
        w = torch.where(c.bool(), frac, 1 - frac).prod(-1)
        prod = corner * multipliers[None]
        h = prod[..., 0]
        for k in range(1, g.in_dim):
            h = h ^ prod[..., k]
        key = torch.where(g.dense[None], torch.minimum(prod.sum(-1), level_size[None] - 1), h & (level_size[None] - 1))
        out = out + g.embeddings[key + level_offset[None]] * w[..., None]
    return out.reshape(x.shape[0], -1)


def test_hash_grid_matches_brute_force_and_gradients():
    torch.manual_seed(0)
    for dim in (2, 3, 4):  # every prime, two of them above 2^31
        g = HashGrid(dim, n_levels=6, n_features=2, log2_table=10, base_res=4, max_res=128, init_scale=1.0)
        assert g.dense.any() and not g.dense.all()  # both code paths exercised
        x = torch.rand(500, dim) * 2.2 - 1.1  # [-1, 1] and a margin outside (clamped)
        assert torch.allclose(g(x), brute_force(g, x), atol=1e-5)
        g(x).square().sum().backward()
        fast = g.embeddings.grad.clone()
        g.embeddings.grad = None
        brute_force(g, x).square().sum().backward()
        assert torch.allclose(fast, g.embeddings.grad, atol=1e-4)


def test_hash_grid_fields_match_the_unit_cube_reference():
    """Fields hand the hash grid the renderer's ``[-1, 1]`` points unchanged; their outputs equal
    the old remap-then-encode computation, so existing checkpoints render as before."""
    torch.manual_seed(0)
    x = torch.rand(300, 3) * 2.2 - 1.1
    ngp = build_field("ngp", dict(n_levels=6, log2_table=10, base_res=4, max_res=128))
    mixed = build_field("mlp", dict(encoding="hashgrid", hidden=16, layers=2,
                                    encoding_options=dict(n_levels=6, log2_table=10, base_res=4, max_res=128)))
    with torch.no_grad():
        for g in (ngp.encoding, mixed.encoding):
            g.embeddings.uniform_(-1, 1)
        raw, geo = ngp.raw_density(x)
        ref = ngp.density_net(brute_force(ngp.encoding, x))
        torch.testing.assert_close(raw, ref[:, 0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(geo, ref[:, 1:], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mixed.features(x), mixed.backbone(brute_force(mixed.encoding, x)), rtol=1e-5, atol=1e-5)


def test_mixed_hash_grid_field_loads_checkpoints_of_the_wrapped_grid():
    """Before the grid read ``[-1, 1]`` itself, MLP fields wrapped it: ``encoding.inner.embeddings``."""
    options = dict(encoding="hashgrid", hidden=16, layers=2, encoding_options=dict(n_levels=4, log2_table=10, max_res=32))
    field = build_field("mlp", options)
    state = field.state_dict()
    old = {("encoding.inner.embeddings" if k == "encoding.embeddings" else k): v.clone() + 1.0 for k, v in state.items()}
    fresh = build_field("mlp", options)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.encoding.embeddings, old["encoding.inner.embeddings"])


def test_level_resolutions_grow_geometrically():
    g = HashGrid(3, n_levels=16, base_res=16, max_res=2048)
    res = g.resolution
    assert res[0] == 16 and abs(res[-1].item() - 2048) <= 1
    ratios = res[1:] / res[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, math.exp(math.log(128) / 15)), atol=0.05)


def test_hash_grid_field_fits_a_2d_image():
    torch.manual_seed(0)
    h = w = 64
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    image = torch.stack([
        0.5 + 0.5 * torch.sin(6 * xx + 3 * yy),
        ((xx * 4).floor() + (yy * 4).floor()).remainder(2),
        0.5 + 0.5 * torch.cos(9 * xx * yy),
    ], -1)
    coords = torch.stack([xx, yy], -1).reshape(-1, 2)
    field = build_field("ngp", dict(n_levels=8, n_features=2, log2_table=12, base_res=4, max_res=64),
                        in_dim=2, view_dependent=False)
    opt = torch.optim.Adam(field.parameters(), lr=1e-2, eps=1e-15)
    for _ in range(300):
        _, rgb = field(coords)
        loss = (rgb - image.reshape(-1, 3)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, rgb = field(coords)
    assert psnr(rgb.reshape(h, w, 3), image) > 30


def test_an_unknown_backend_is_refused_in_one_line():
    import pytest

    from neuralfields.errors import NeuralFieldsError
    from neuralfields.fields import build_field

    with pytest.raises(NeuralFieldsError, match="backend 'cuda' .*expected one of auto, torch, triton"):
        build_field("ngp", {"n_levels": 2, "log2_table": 8, "max_res": 32, "backend": "cuda"}, in_dim=3)
