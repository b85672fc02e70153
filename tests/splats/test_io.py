"""Splat files: the 3DGS .ply layout (read back exactly, and by an independent parse), .splat
records, the similarity transform into a viewer's frame, and files that are not splats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from neuralfields.cameras import Cameras, look_at
from neuralfields.splats import GaussianScene, rasterize
from neuralfields.splats.io import SPLAT_DTYPE, ply_properties, read_ply, read_splat, save_ply, save_splat, save_splats
from neuralfields.splats.transform import transform_scene

pytestmark = pytest.mark.usefixtures("one_thread")


def random_scene(n: int = 50, degree: int = 3, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianScene(torch.randn(n, 3, generator=g) * 0.5, torch.randn(n, 3, generator=g) * 0.3 - 3,
                         torch.randn(n, 4, generator=g) * 2, torch.randn(n, generator=g) * 2,
                         torch.randn(n, k, 3, generator=g) * 0.3)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_reads_back_exactly(tmp_path, degree):
    scene = random_scene(degree=degree)
    back = read_ply(save_ply(scene, tmp_path / "s.ply"))
    assert back.max_degree == degree and len(back) == len(scene)
    for (name, a), (_, b) in zip(scene.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), name


def test_ply_layout_is_the_reference_implementations(tmp_path):
    """Parsed by hand: header order, float32 columns, f_rest channel-major."""
    scene = random_scene(n=3)
    with torch.no_grad():
        k = torch.arange(1, 16, dtype=torch.float32)[None, :, None]
        c = torch.arange(3, dtype=torch.float32)[None, None, :]
        scene.sh_rest.copy_((100 * c + k).expand(3, -1, -1))  # coefficient k + 1 of channel c
    data = save_ply(scene, tmp_path / "s.ply").read_bytes()
    header, body = data.split(b"end_header\n")
    lines = header.decode().splitlines()
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 3"]
    names = [line.split()[2] for line in lines[3:] if line.startswith("property float")]
    assert names == ply_properties(3) and len(names) == 62
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[54:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    rows = np.frombuffer(body, dtype="<f4").reshape(3, 62)
    rest = rows[:, 9:54]
    assert rest[0, 0] == 1 and rest[0, 14] == 15 and rest[0, 15] == 101 and rest[0, 44] == 215
    np.testing.assert_array_equal(rows[:, 0:3], scene.means.detach().numpy())
    np.testing.assert_array_equal(rows[:, 54], scene.opacity_logits.detach().numpy())
    np.testing.assert_array_equal(rows[:, 58:62], scene.quats.detach().numpy())
    assert (rows[:, 3:6] == 0).all()


def test_splat_records_are_sorted_activated_bytes(tmp_path):
    scene = random_scene(n=20, degree=1)
    records = read_splat(save_splat(scene, tmp_path / "s.splat"))
    assert records.dtype == SPLAT_DTYPE and len(records) == 20
    assert (tmp_path / "s.splat").stat().st_size == 20 * 32
    with torch.no_grad():
        weight = scene.scales.prod(1) * scene.opacities
        order = torch.argsort(-weight).numpy()
        np.testing.assert_allclose(records["position"], scene.means[order].numpy())
        np.testing.assert_allclose(records["scale"], scene.scales[order].numpy(), rtol=1e-6)
        rgb = (0.5 + 0.28209479177387814 * scene.sh_dc[order, 0]).clamp(0, 1) * 255
        assert np.abs(records["rgba"][:, :3] - rgb.numpy()).max() <= 0.5 + 1e-4
        assert np.abs(records["rgba"][:, 3] - scene.opacities[order].numpy() * 255).max() <= 0.5 + 1e-4
        unit = scene.quats[order] / scene.quats[order].norm(dim=-1, keepdim=True)
        assert np.abs((records["rotation"].astype(np.float64) - 128) / 128 - unit.numpy()).max() <= 0.5 / 128 + 1e-6


def test_a_moved_scene_renders_the_same_from_the_moved_camera():
    """Means, scales, rotations and the view-dependent colour all follow a similarity transform."""
    scene = random_scene(n=40, degree=3, seed=3)
    with torch.no_grad():
        scene.log_scales.add_(1.2)
    c2w = look_at(torch.tensor([0.4, -2.5, 1.0]), torch.zeros(3), torch.tensor([0.0, 0, 1]))
    cams = Cameras.create(c2w, 40.0, 40.0, 24.0, 20.0, 48, 40)
    angle = 0.7
    rot = torch.tensor([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]],
                       dtype=torch.float32) @ torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    matrix = torch.eye(4)
    matrix[:3, :3], matrix[:3, 3] = 2.5 * rot, torch.tensor([0.3, -1.0, 2.0])
    moved = transform_scene(scene, matrix.numpy())
    moved_c2w = torch.cat([rot @ c2w[:, :3], (2.5 * rot @ c2w[:, 3] + matrix[:3, 3])[:, None]], 1)
    moved_cams = Cameras.create(moved_c2w, 40.0, 40.0, 24.0, 20.0, 48, 40)
    with torch.no_grad():
        before = rasterize(scene.gaussians(), cams, 0).rgb
        after = rasterize(moved.gaussians(), moved_cams, 0).rgb
    assert before.std() > 0.05
    torch.testing.assert_close(after, before, rtol=0, atol=2e-4)


def test_files_that_are_not_splats_get_one_line(tmp_path):
    from neuralfields.export.pointcloud import save_pointcloud

    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"\x00\x01 not a ply at all" * 10)
    assert_one_line_error(lambda: read_ply(garbage), str(garbage), "not a PLY file")
    cloud = save_pointcloud(np.random.default_rng(0).random((20, 3)), np.full((20, 3), 200, np.uint8),
                            tmp_path / "cloud.ply")
    assert_one_line_error(lambda: read_ply(cloud), str(cloud), "not a Gaussian splat file", "f_dc_0")
    good = save_ply(random_scene(n=30), tmp_path / "good.ply").read_bytes()
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(good[: len(good) - 100])
    assert_one_line_error(lambda: read_ply(truncated), str(truncated), "malformed")
    assert_one_line_error(lambda: read_ply(tmp_path / "missing.ply"), "missing.ply", "cannot read")
    assert_one_line_error(lambda: save_splats(random_scene(), tmp_path / "s.obj"), "s.obj", ".ply or .splat")


def test_save_splats_picks_the_format_by_suffix(tmp_path):
    scene = random_scene(n=10)
    assert len(read_splat(save_splats(scene, tmp_path / "a.SPLAT"))) == 10
    assert len(read_ply(save_splats(scene, tmp_path / "a.ply"))) == 10
