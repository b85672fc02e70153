"""Mesh and point cloud export: accuracy on the analytic demo scene, formats, clean-up, CLI errors.

The demo scene's geometry is known exactly (``DemoScene.sdf`` / ``sample_surface``), so exported
geometry is scored by its Chamfer distance to the true surface. The platform's underside
(z < -0.59) is never seen by the demo cameras and is left out of both point sets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import config_only_copy
from neuralfields.cli import main
from neuralfields.data.demo import DemoScene, demo_fov
from neuralfields.errors import NeuralFieldsError
from neuralfields.fields import Field

pytestmark = pytest.mark.usefixtures("one_thread")

RES = 64  # training image size of the geometry run
PIXEL = 2 * 3.5 * math.tan(demo_fov() / 2) / RES  # world size of one pixel at the scene centre: ~0.040
# Chamfer bar for meshes from the short run: two pixel footprints (~0.08, 5% of the 1.6-wide
# scene). A 150-step run on 64 px images resolves the scene to about a pixel (measured CD
# 0.04-0.06 for both methods); the bar also sits well below what a registration error gives
# (a mesh off by a voxel-to-world slip, a flipped axis or a wrong level scores > 0.15).
MESH_BAR = 2 * PIXEL
UNSEEN_Z = -0.59


def surface_points(n: int = 30000) -> np.ndarray:
    pts = DemoScene().sample_surface(n, seed=1).numpy()
    return pts[pts[:, 2] > UNSEEN_Z]


def chamfer(points: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean distance points -> truth (accuracy) and truth -> points (completeness)."""
    from scipy.spatial import cKDTree

    points = points[points[:, 2] > UNSEEN_Z]
    return float(cKDTree(truth).query(points)[0].mean()), float(cKDTree(points).query(truth)[0].mean())


def mesh_chamfer(mesh, truth: np.ndarray) -> tuple[float, float]:
    import trimesh

    return chamfer(trimesh.sample.sample_surface(mesh, 30000, seed=0)[0], truth)


@pytest.fixture(scope="module")
def geo_run(tmp_path_factory):
    """A small ngp run trained long enough for stable geometry (150 steps on 64 px, 32 views).

    About 20-30 s on a quiet 2-core machine (the session's ``tiny_run``, 48 px / 300 steps at
    192 samples per diagonal, spends its time on finer steps rather than on views).
    """
    from conftest import tiny_config

    from neuralfields.data import load_data
    from neuralfields.data.demo import write_demo_scene
    from neuralfields.train.scene import scene_trainer

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    data = write_demo_scene(tmp_path_factory.mktemp("geo_demo"), resolution=RES, n_train=32, n_val=0, n_test=0)
    cfg = tiny_config(data, steps=150)
    cfg.render.samples_per_diagonal = 128
    cfg.train.grid_warmup_steps = 32
    cfg.train.grid_update_every = 8
    cfg.train.checkpoint_every = 0
    run = tmp_path_factory.mktemp("geo_runs") / "geo"
    cfg.output = str(run)
    scene_trainer(cfg, load_data(cfg.data, "train"), None, run, progress=False).fit()
    torch.set_num_threads(previous)
    return run


@pytest.fixture(scope="module")
def model(geo_run):
    from neuralfields.scene_model import load_model

    return load_model(geo_run)[0]


@pytest.fixture(scope="module")
def truth():
    return surface_points()


# ------------------------------------------------------------------------------------ accuracy


def test_marching_cubes_mesh_matches_true_surface(model, truth):
    from neuralfields.export.mesh import MeshConfig, export_mesh

    mesh = export_mesh(model, MeshConfig(resolution=96, colors=False))
    acc, comp = mesh_chamfer(mesh, truth)
    print(f"marching cubes: accuracy {acc:.4f}, completeness {comp:.4f}, bar {MESH_BAR:.4f}")
    assert (acc + comp) / 2 < MESH_BAR
    assert max(acc, comp) < 1.5 * MESH_BAR
    lo, hi = mesh.bounds
    # Inside the demo geometry's box plus margin; below the platform (never seen) anything goes.
    assert np.all(lo[:2] > -0.95) and np.all(hi[:2] < 0.95) and hi[2] < 0.35


def test_tsdf_mesh_matches_true_surface(model, truth):
    from neuralfields.export.mesh import MeshConfig, export_mesh
    from neuralfields.export.tsdf import TSDFConfig

    mesh = export_mesh(model, MeshConfig(method="tsdf", resolution=96, colors=False, tsdf=TSDFConfig(views=12)))
    acc, comp = mesh_chamfer(mesh, truth)
    print(f"tsdf: accuracy {acc:.4f}, completeness {comp:.4f}, bar {MESH_BAR:.4f}")
    assert (acc + comp) / 2 < MESH_BAR
    assert max(acc, comp) < 1.5 * MESH_BAR


def test_tsdf_fusion_of_exact_depth_is_voxel_accurate(truth):
    """Fusing the analytic scene's exact depth maps recovers the surface to within a voxel.

    Checks the fusion geometry (projection, OpenGL axes, ray distance vs. voxel distance,
    masking of unseen cubes) independently of any training.
    """
    from neuralfields.data.demo import demo_camera_poses
    from neuralfields.cameras import Cameras, fov_to_focal
    from neuralfields.export.tsdf import TSDFVolume

    scene = DemoScene()
    size = 96
    focal = fov_to_focal(demo_fov(), size)
    cams = Cameras.create(demo_camera_poses(16, "train"), focal, focal, size / 2, size / 2, size, size)
    box = torch.tensor([[-0.9, -0.9, -0.7], [0.9, 0.9, 0.3]])
    voxel = 1.8 / 63
    shape = tuple(int(math.ceil(float(e) / voxel) + 1) for e in box[1] - box[0])
    volume = TSDFVolume(box[0], shape, voxel, 3 * voxel)
    for i in range(len(cams)):
        o, d = cams.image_rays(i)
        hit = scene.intersect(o.reshape(-1, 3), d.reshape(-1, 3))
        depth = torch.where(hit["hit"], hit["t"], torch.zeros_like(hit["t"])).reshape(size, size)
        volume.integrate(depth, hit["hit"].reshape(size, size), cams, i)
    verts, faces = volume.surface()
    import trimesh

    acc, comp = mesh_chamfer(trimesh.Trimesh(verts, faces), truth)
    assert acc < 0.5 * voxel and comp < voxel, (acc, comp, voxel)
    # Unobserved voxels are masked: below the never-seen underside only the side faces continue,
    # by at most the truncation band (voxels behind a side face within it count as matter).
    assert verts[:, 2].min() > -0.6 - 4 * voxel


def test_marching_cubes_on_exact_sdf_is_outward_and_placed(truth):
    from neuralfields.export.volume import Volume, marching_cubes

    voxel = 1.8 / 63
    origin = np.array([-0.9, -0.9, -0.7])
    axes = [origin[i] + voxel * np.arange(n) for i, n in enumerate((64, 64, 36))]
    pts = torch.as_tensor(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3))
    sdf = DemoScene().sdf(pts).numpy().reshape(64, 64, 36)
    verts, faces = marching_cubes(Volume(-sdf, origin, voxel), 0.0)  # matter positive
    import trimesh

    mesh = trimesh.Trimesh(verts, faces)
    acc, comp = mesh_chamfer(mesh, truth)
    assert acc < 0.5 * voxel and comp < 0.5 * voxel  # sharp box edges are cut by up to a voxel
    # Faces are wound outwards: their normals point up the SDF gradient.
    centres = torch.tensor(np.array(mesh.triangles_center))
    outside = DemoScene().sdf(centres + 0.3 * voxel * torch.tensor(np.array(mesh.face_normals)))
    assert (outside > 0).float().mean() > 0.95


# ------------------------------------------------------------------------------------ formats, colours


def test_cli_mesh_formats_and_colours(geo_run, tmp_path, capsys):
    import trimesh

    out = tmp_path / "scene.glb"
    assert main(["export", "mesh", str(geo_run), "--resolution", "64", "--simplify", "4000", "--out", str(out)]) == 0
    assert "faces" in capsys.readouterr().out
    loaded = trimesh.load(out, force="mesh")
    assert 1000 < len(loaded.faces) <= 4800
    colours = np.asarray(loaded.visual.vertex_colors)[:, :3].astype(np.float32) / 255
    assert colours.std() > 0.04  # coloured, not a uniform default (the short run's colours are still dull)


    mesh = trimesh.load(out, force="mesh")
    from neuralfields.export.mesh import save_mesh

    for fmt in ("ply", "obj"):
        path = save_mesh(mesh, tmp_path / "again", fmt)
        back = trimesh.load(path, force="mesh")
        assert len(back.faces) == len(mesh.faces) and path.suffix == f".{fmt}"
        assert np.asarray(back.visual.vertex_colors).std() > 10


def test_glb_is_y_up(tmp_path):
    import trimesh

    from neuralfields.export.mesh import save_mesh

    # A box standing on the z = 0 ground of a z-up scene must stand on y = 0 in the y-up glTF.
    box = trimesh.creation.box(extents=(0.2, 0.4, 1.0))
    box.apply_translation((0.1, 0.3, 0.5))
    box.visual.vertex_colors = np.tile([200, 40, 40, 255], (len(box.vertices), 1)).astype(np.uint8)
    back = trimesh.load(save_mesh(box, tmp_path / "box.glb"), force="mesh")
    assert np.allclose(back.bounds, [[0.0, 0.0, -0.5], [0.2, 1.0, -0.1]], atol=1e-6)
    assert np.allclose(box.bounds, [[0.0, 0.1, 0.0], [0.2, 0.5, 1.0]])  # the caller's mesh is untouched
    ply = trimesh.load(save_mesh(box, tmp_path / "box.ply"), force="mesh")
    assert np.allclose(ply.bounds, box.bounds)  # PLY and OBJ keep the scene's own axes


def test_cli_pointcloud(geo_run, tmp_path, truth):
    import trimesh

    out = tmp_path / "cloud.ply"
    assert main(["export", "pointcloud", str(geo_run), "--views", "4", "--downscale", "2", "--out", str(out)]) == 0
    cloud = trimesh.load(out)
    pts = np.asarray(cloud.vertices)
    assert len(pts) > 500 and np.asarray(cloud.colors).shape == (len(pts), 4)
    sdf = DemoScene().sdf(torch.as_tensor(pts)).abs().numpy()
    # Points sit on the surface to within a rendered pixel footprint (views at half the training
    # size: 2 * PIXEL ~ 0.08; measured median ~0.045).
    assert np.median(sdf) < 2 * PIXEL


CROP = [-0.4, -0.4, -0.3, 0.4, 0.45, 0.6]  # world units: cuts into the demo object on every side


def test_cli_crop_keeps_geometry_inside(geo_run, tmp_path, capsys):
    import trimesh

    full, cropped = tmp_path / "full.ply", tmp_path / "cropped.ply"
    common = ["export", "mesh", str(geo_run), "--resolution", "48", "--no-color"]
    assert main(common + ["--out", str(full)]) == 0
    # "--crop=..." because the value starts with a minus sign (argparse would take it for a flag).
    assert main(common + ["--crop=" + ",".join(map(str, CROP)), "--simplify", "500", "--out", str(cropped)]) == 0
    lo, hi = np.array(CROP[:3]), np.array(CROP[3:])
    whole = trimesh.load(full, force="mesh").bounds
    assert (whole[0] < lo - 0.05).any() and (whole[1] > hi + 0.05).any()  # the crop really cuts
    bounds = trimesh.load(cropped, force="mesh").bounds
    assert (bounds[0] >= lo - 1e-6).all() and (bounds[1] <= hi + 1e-6).all(), bounds
    assert (bounds[1] - bounds[0]).min() > 0.3  # and something is left

    cloud = tmp_path / "cloud.ply"
    assert main(["export", "pointcloud", str(geo_run), "--views", "4", "--downscale", "1", "--crop=" + ",".join(map(str, CROP)),
                 "--out", str(cloud)]) == 0
    pts = np.asarray(trimesh.load(cloud).vertices)
    assert len(pts) > 100 and (pts >= lo - 1e-6).all() and (pts <= hi + 1e-6).all()
    assert main(["export", "pointcloud", str(geo_run), "--crop", "1.5,1.5,1.5,1.6,1.6,1.6",
                 "--out", str(cloud)]) == 2
    assert "none of the" in capsys.readouterr().err


def test_cli_splat_file_reads_back(geo_run, tmp_path, capsys):
    from neuralfields.export.splat import SPLAT_DTYPE, read_splat

    out = tmp_path / "scene.splat"
    assert main(["export", "pointcloud", str(geo_run), "--views", "4", "--downscale", "1", "--max-points", "3000",
                 "--out", str(out)]) == 0
    assert "3,000 points" in capsys.readouterr().out
    splats = read_splat(out)
    assert out.stat().st_size == 3000 * SPLAT_DTYPE.itemsize == len(splats) * 32
    assert np.isfinite(splats["position"]).all() and (splats["scale"] > 0).all()
    assert (splats["rgba"][:, 3] == 255).all() and splats["rgba"][:, :3].std() > 5
    # Viewer frame: the scene centre at the origin, training cameras 5 units away, up = -y.
    assert np.abs(np.median(splats["position"], 0)).max() < 1.5
    assert np.ptp(splats["position"], 0).max() < 5


def test_splat_layout_and_transform(tmp_path):
    from neuralfields.export.splat import read_splat, save_splat, viewer_transform

    pts = np.array([[0.0, 0, 1], [1, 0, 1], [0, 2, 1]])
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    # Scene centred at (0, 0, 1), z up, cameras 2.5 units away: z -> -y, doubled.
    t = viewer_transform(np.array([0.0, 0, 1]), np.array([0.0, 0, 1]), np.array([1.0, 0, 0]), 2.5)
    back = read_splat(save_splat(pts, rgb, tmp_path / "s.splat", scales=np.full(3, 0.1), transform=t))
    assert np.allclose(back["position"], [[0, 0, 0], [2, 0, 0], [0, 0, 4]])
    assert np.allclose(back["scale"], 0.2) and (back["rgba"][:, :3] == rgb).all()
    # Round splats turn with the scene: their rotation is the viewer frame's (any would draw the same).
    from neuralfields.camera_paths.rotations import matrix_to_quaternion

    turned = np.round(matrix_to_quaternion(t[:3, :3] / 2)[0] * 128 + 128).clip(0, 255)
    assert (back["rotation"] == turned).all()
    up = save_splat(np.array([[0.0, 0, 2]]), rgb[:1], tmp_path / "up.splat", scales=[0.1], transform=t)
    assert read_splat(up)["position"][0, 1] < 0  # above the centre is -y
    with pytest.raises(NeuralFieldsError, match="multiple of 32"):
        (tmp_path / "bad.splat").write_bytes(b"x" * 33)
        read_splat(tmp_path / "bad.splat")


class AnalyticField(Field):
    """A ball of radius 0.5 whose colour encodes position: rgb = (x + 1) / 2."""

    geo_dim = 3

    def raw_density(self, x, t=None):
        return 500 * torch.sigmoid((0.5 - x.norm(dim=-1)) / 0.005), x

    def density_activation(self, raw):
        return raw  # raw_density is already the density

    def color(self, x, d, geo, t=None):
        return ((geo + 1) / 2).clamp(0, 1)


def test_vertex_colours_come_from_the_surface():
    """Colours are read at the surface the vertex lies on, not inside or outside it."""
    import trimesh
    from types import SimpleNamespace

    from neuralfields.export.mesh import vertex_colors
    from neuralfields.render import SceneBox, shade

    field, space = AnalyticField(), SceneBox(torch.tensor([[-1.0] * 3, [1.0] * 3]))
    model = SimpleNamespace(field=field, space=space, device=torch.device("cpu"),
                            shade=lambda samples, rays, composite_background=True: shade(
                                field, space, samples, rays, composite_background=composite_background))
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    rgb = vertex_colors(model, np.asarray(sphere.vertices), np.array(sphere.vertex_normals), voxel=0.01)
    expected = (np.asarray(sphere.vertices) + 1) / 2
    assert np.abs(rgb - expected).max() < 0.02


# ------------------------------------------------------------------------------------ clean-up helpers


def test_floaters_removed_and_simplifiers():
    import trimesh

    from neuralfields.export.mesh import cluster_vertices, remove_floaters, simplify

    big = trimesh.creation.icosphere(subdivisions=4)
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    speck.apply_translation([3, 0, 0])
    both = trimesh.util.concatenate([big, speck])
    cleaned = remove_floaters(both, 0.05)
    assert len(cleaned.faces) == len(big.faces)
    assert np.abs(cleaned.vertices).max() < 1.01

    clustered = cluster_vertices(big, 500)
    assert 200 < len(clustered.faces) <= 600
    assert np.abs(np.linalg.norm(clustered.vertices, axis=1) - 1).max() < 0.1
    quadric = simplify(big, 500)  # fast-simplification when installed, clustering otherwise
    assert len(quadric.faces) <= 600
    assert simplify(big, None) is big


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture
def untrained_run(geo_run, tmp_path):
    return config_only_copy(geo_run, tmp_path / "untrained")


@pytest.mark.parametrize("args, expected", [
    (["--bbox", "0,0,0,1,1"], "expected 6"),
    (["--bbox", "5,5,5,6,6,6"], "outside the scene box"),
    (["--bbox", "0,0,0,-1,1,1"], "must exceed"),
    (["--resolution", "4"], "[8, 2048]"),
    (["--resolution", "many"], "--resolution: expected an integer"),
    (["--method", "poisson"], "unknown method"),
    (["--crop", "0,0,0,1,1"], "--crop: expected 6"),
    (["--crop", "0,0,0,-1,1,1"], "--crop: each max must exceed its min"),
    (["--crop", "nan,0,0,1,1,1"], "--crop: expected 6 finite numbers"),
    (["--crop", "5,5,5,6,6,6"], "does not overlap"),
    (["--out", "mesh.stl"], "unsupported mesh format"),
])
def test_export_cli_bad_input(geo_run, tmp_path, capsys, args, expected):
    argv = ["export", "mesh", str(geo_run), "--no-color"] + args
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "m.ply")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and expected in err, err


def test_export_cli_missing_checkpoint(untrained_run, tmp_path, capsys):
    for kind in ("mesh", "pointcloud"):
        assert main(["export", kind, str(untrained_run), "--out", str(tmp_path / "x.ply")]) == 2
        err = capsys.readouterr().err.strip()
        assert "no readable checkpoint" in err and "\n" not in err
    assert main(["export", "pointcloud", str(untrained_run), "--out", str(tmp_path / "x.obj")]) == 2
    assert ".ply" in capsys.readouterr().err


def test_threshold_errors(model):
    from neuralfields.export.mesh import MeshConfig, export_mesh

    with pytest.raises(NeuralFieldsError, match="no surface"):
        export_mesh(model, MeshConfig(resolution=16, threshold=1e9, colors=False))
    with pytest.raises(NeuralFieldsError, match="unknown method"):
        export_mesh(model, MeshConfig(method="poisson"))
