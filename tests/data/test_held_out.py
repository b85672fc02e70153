"""Held-out folders of any layout (a test split alone, a transforms.json alone) and one-line errors
for invalid intrinsics in every loader."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, ngp_copy
from neuralfields.cli import main
from neuralfields.data import describe_split, held_out_split, load_scene
from neuralfields.data.colmap_model import read_model, write_model

from test_loaders_colmap import tiny_model, write_capture


def only_test_copy(demo_dir, tmp_path) -> Path:
    """A copy of the demo scene holding only its test split."""
    folder = tmp_path / "only-test"
    shutil.copytree(demo_dir, folder)
    for split in ("train", "val"):
        (folder / f"transforms_{split}.json").unlink()
    return folder


def test_a_folder_with_only_a_test_split_loads_and_all_joins_the_splits_present(demo_dir, tmp_path):
    folder = only_test_copy(demo_dir, tmp_path)
    assert held_out_split(folder) == "test"
    scene = load_scene(folder, "test")
    assert len(scene) == 4 and scene.format == "blender"
    assert describe_split(scene, 8) == "split 'test' (transforms_test.json): 4 images"
    assert describe_split(scene, 8, 2) == "split 'test' (transforms_test.json): the first 2 of 4 images"
    # The full demo folder: test among several splits; all = train + val + test in that order.
    assert held_out_split(demo_dir) == "test"
    every = load_scene(demo_dir, "all")
    assert len(every) == 24 + 4 + 4 and every.split == "all"
    assert every.files[-4:] == load_scene(demo_dir, "test").files
    assert (every.cameras.c2w[-4:] == scene.cameras.c2w).all()


def test_a_transforms_json_alone_is_scored_whole(demo_dir, tmp_path):
    folder = ngp_copy(demo_dir, tmp_path / "ngp")
    assert held_out_split(folder) == "all"
    scene = load_scene(folder, "all")
    assert len(scene) == 4 and scene.format == "ngp"
    assert describe_split(scene, 8) == "all images of the folder: 4 images"
    assert len(load_scene(folder, "test")) == 1  # the held-out protocol: frame 0 only
    assert "each 8th image" in describe_split(load_scene(folder, "test"), 8)


def test_eval_data_scores_a_test_split_alone_or_a_whole_transforms_json(demo_dir, tiny_run, tmp_path, capsys):
    only_test = only_test_copy(demo_dir, tmp_path)
    assert main(["eval", str(tiny_run), "--data", str(only_test), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "split 'test' (transforms_test.json): 4 images" in printed, printed
    result = json.loads((tiny_run / "eval" / "test-only-test" / "metrics.json").read_text())
    assert result["split"] == "test" and len(result["images"]) == 4 and result["psnr"] > 18
    assert result["scored"] == "split 'test' (transforms_test.json): 4 images"
    assert result["poses"] == "as given"  # the demo run does not refine its (synthetic) cameras
    reference = json.loads((tiny_run / "eval" / "test-only-test" / "metrics.json").read_text())["psnr"]

    ngp = ngp_copy(demo_dir, tmp_path / "held-out-ngp")
    assert main(["eval", str(tiny_run), "--data", str(ngp), "--no-progress"]) == 0
    assert "all images of the folder: 4 images" in capsys.readouterr().out
    result = json.loads((tiny_run / "eval" / "all-held-out-ngp" / "metrics.json").read_text())
    assert result["split"] == "all" and len(result["images"]) == 4
    assert abs(result["psnr"] - reference) < 0.5  # the same views, read through another layout
    # Asking for the held-out protocol still works: frame 0 alone.
    assert main(["eval", str(tiny_run), "--data", str(ngp), "--split", "test", "--no-progress"]) == 0
    assert len(json.loads((tiny_run / "eval" / "test-held-out-ngp" / "metrics.json").read_text())["images"]) == 1


@pytest.mark.parametrize("key, value", [("camera_angle_x", -0.5), ("camera_angle_x", 0.0), ("camera_angle_y", 4.0)])
def test_blender_field_of_view_must_be_valid(demo_dir, tmp_path, key, value):
    folder = only_test_copy(demo_dir, tmp_path)
    meta = json.loads((folder / "transforms_test.json").read_text())
    meta[key] = value
    (folder / "transforms_test.json").write_text(json.dumps(meta))
    assert_one_line_error(lambda: load_scene(folder, "test"), "transforms_test.json", key, f"got {value:g}")


@pytest.mark.parametrize("key, value, where", [("fl_x", -100.0, None), ("fl_y", 0.0, None), ("w", 0.0, None),
                                               ("h", -48.0, None), ("camera_angle_x", -0.7, None), ("fl_x", 0.0, 2)])
def test_ngp_and_nerfstudio_intrinsics_must_be_positive(demo_dir, tmp_path, key, value, where):
    for nerfstudio in (False, True):
        folder = ngp_copy(demo_dir, tmp_path / f"ngp-{nerfstudio}")
        meta = json.loads((folder / "transforms.json").read_text())
        meta.update(fl_x=60.0, fl_y=60.0, w=48, h=48)
        if key == "camera_angle_x":
            del meta["fl_x"]
        if nerfstudio:
            meta["camera_model"] = "PINHOLE"
        (meta if where is None else meta["frames"][where])[key] = value
        (folder / "transforms.json").write_text(json.dumps(meta))
        needles = ["transforms.json", f"'{key}'", f"got {value:g}"] + ([f"frame {where}"] if where is not None else [])
        assert_one_line_error(lambda: load_scene(folder, "all"), *needles)


def test_colmap_and_llff_intrinsics_must_be_positive(tmp_path):
    colmap = tmp_path / "colmap"
    write_capture(colmap, ext=".txt")
    cameras, images, points = read_model(colmap / "sparse" / "0", ".txt")
    cameras[2].params[0] = -14.0  # the focal length of camera 2, whatever its model
    write_model(colmap / "sparse" / "0", cameras, images, points, ".txt")
    assert_one_line_error(lambda: load_scene(colmap), "cameras.txt", "camera 2", "'fx'", "got -14")

    llff = tmp_path / "llff"
    (llff / "images").mkdir(parents=True)
    _, _, _, c2w = tiny_model(3)
    rows = []
    for i in range(3):
        Image.new("RGB", (16, 12)).save(llff / "images" / f"{i}.png")
        mat = np.concatenate([-c2w[i, :3, 1:2], c2w[i, :3, 0:1], c2w[i, :3, 2:4], [[12], [16], [14]]], axis=1)
        rows.append(np.concatenate([mat.reshape(-1), [1.0, 10.0]]))
    rows[1][14] = 0.0  # f of row 1
    np.save(llff / "poses_bounds.npy", np.stack(rows))
    assert_one_line_error(lambda: load_scene(llff), "poses_bounds.npy", "row 1", "'f'", "got 0")
