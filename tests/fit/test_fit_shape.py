"""``neuralfields fit`` on meshes: inside tests, occupancy and SDF grids, the CLI fit of a primitive, outputs and errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error
from neuralfields.cli import main
from neuralfields.fit import meshes
from neuralfields.fit.signals import ReadOptions, read_signal

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("skimage")
pytestmark = pytest.mark.usefixtures("one_thread")


def centres(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n * 2 - 1


def test_inside_grid_matches_solids_and_survives_a_hole():
    c = centres(32)
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    box = trimesh.creation.box((1.5, 1.0, 1.2))  # faces' diagonals pass exactly through grid centres
    assert np.array_equal(meshes.inside_grid(box.vertices, box.faces, c), (abs(x) < 0.75) & (abs(y) < 0.5) & (abs(z) < 0.6))
    sphere = trimesh.creation.icosphere(4, radius=0.8)
    truth = x**2 + y**2 + z**2 < 0.64
    assert (meshes.inside_grid(sphere.vertices, sphere.faces, c) != truth).mean() < 0.002  # facets vs the true sphere
    # One face missing: the rays through the hole flip their column along one axis, the vote keeps it.
    assert (meshes.inside_grid(sphere.vertices, sphere.faces[1:], c) != truth).mean() < 0.002
    assert meshes.open_edges(sphere.faces) == 0 and meshes.open_edges(sphere.faces[1:]) == 3


def test_chamfer_and_pictures():
    sphere = trimesh.creation.icosphere(3)
    a = meshes.surface_points(sphere.vertices, sphere.faces, 2000, seed=0)[0]
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=0.02)
    assert meshes.chamfer(a, a) == 0 and meshes.chamfer(a, a * 1.1) == pytest.approx(0.1, abs=0.02)
    picture = meshes.shaded_view(sphere.vertices, sphere.faces, extent=1.1, size=64)
    assert picture.shape == (64, 64, 3) and np.all(picture[0, 0] == 1) and picture[32, 32].max() < 1  # disc on white


@pytest.fixture
def torus_ply(tmp_path):
    path = tmp_path / "torus.ply"
    trimesh.creation.torus(0.6, 0.25, major_sections=48, minor_sections=24).export(path)
    return path


@pytest.mark.parametrize("batch, selection", [("0", "uniform"), ("3000", "int")])
def test_cli_fits_a_torus_and_writes_its_mesh(torus_ply, tmp_path, batch, selection):
    out = tmp_path / "out"
    rc = main(["fit", str(torus_ply), "--field", "ngp", "--size", "24", "--steps", "150", "--batch", batch,
               "--selection", selection, "--lr", "3e-2", "--set", "log2_table=12", "--set", "n_levels=8",
               "--output", str(out), "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "shape" and metrics["target"] == "occupancy" and metrics["resolution"] == 24
    assert metrics["iou"] > 0.85, metrics["iou"]
    assert metrics["chamfer"] < 0.03, metrics["chamfer"]  # in units of the torus's width (1.7)
    mesh = trimesh.load(out / "reconstruction.glb", force="mesh")
    original = trimesh.load(torus_ply)
    assert np.abs(mesh.bounds - original.bounds).max() < 2 * 1.7 / 24  # back in the input's coordinates, within 2 cells
    assert np.asarray(Image.open(out / "reconstruction.png")).shape == (256, 256, 3)
    assert np.asarray(Image.open(out / "comparison.png")).shape == (256, 516, 3)


def test_signed_distance_of_a_closed_mesh(tmp_path):
    path = tmp_path / "box.obj"
    trimesh.creation.box((1.0, 0.6, 0.8)).export(path)
    signal = read_signal(path, ReadOptions(size=16, target="sdf"))
    values = signal.values[..., 0].numpy()  # [z, y, x]; the box spans [-0.9, 0.9] along x
    assert values[8, 8, 8] == pytest.approx(1.0) and values[0, 0, 0] == pytest.approx(0.0)
    # Cell centres at x = 0.8125 and 0.9375: 0.0875 inside the face and 0.0375 outside, truncated at 0.1.
    assert values[8, 8, 14] == pytest.approx(0.5 + 0.5 * 0.875, abs=0.03)
    assert values[8, 8, 15] == pytest.approx(0.5 - 0.5 * 0.375, abs=0.03)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--target", "sdf", "--size", "16", "--field", "ngp", "--steps", "100", "--lr", "3e-2",
                 "--set", "log2_table=12", "--set", "n_levels=6", "--output", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == "sdf" and metrics["iou"] > 0.85


def test_shape_errors_are_one_line(tmp_path, torus_ply):
    open_box = tmp_path / "open.obj"
    box = trimesh.creation.box()
    trimesh.Trimesh(box.vertices, box.faces[2:]).export(open_box)
    assert_one_line_error(lambda: read_signal(open_box, ReadOptions(size=8, target="sdf")),
                          "open.obj", "not watertight (4 open edges)", "--target occupancy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_signal(open_box, ReadOptions(size=8)).target == "occupancy"
    assert any("not watertight" in str(w.message) for w in caught)
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"ply\nformat nonsense\n")
    assert_one_line_error(lambda: read_signal(bad), "bad.ply", "cannot read mesh")
    points = tmp_path / "points.obj"
    points.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    assert_one_line_error(lambda: read_signal(points), "points.obj", "has no faces")
    assert_one_line_error(lambda: read_signal(torus_ply, ReadOptions(size=512)),
                          "shape grid of 512^3 is 134,217,728 samples", "--size R fits a grid of R^3 cells")
    assert_one_line_error(lambda: read_signal(torus_ply, ReadOptions(seconds=2)), "--seconds does not apply to shape")
    assert_one_line_error(lambda: read_signal(tmp_path / "thing.xyz"), "cannot fit a '.xyz' file", ".wav", ".obj")
