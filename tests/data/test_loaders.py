import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error
from neuralfields.data import SplitNotFound, load_scene
from neuralfields.errors import NeuralFieldsError


def test_lego_loads_with_blender_conventions(shared_data):
    scene = load_scene(shared_data / "nerf_synthetic" / "lego", "train", downscale=4)
    assert scene.images.shape == (100, 200, 200, 4) and scene.images.dtype == torch.uint8
    meta = json.loads((shared_data / "nerf_synthetic/lego/transforms_train.json").read_text())
    f800 = 0.5 * 800 / np.tan(0.5 * meta["camera_angle_x"])
    assert abs(scene.cameras.fx[0].item() - f800 / 4) < 1e-3
    assert torch.allclose(scene.cameras.c2w[0], torch.tensor(meta["frames"][0]["transform_matrix"])[:3], atol=1e-6)
    assert scene.has_alpha and 0 < scene.images[..., 3].float().mean() / 255 < 0.5
    assert scene.times is None
    val = load_scene(shared_data / "nerf_synthetic" / "lego", "val", downscale=8)
    assert val.images.shape == (100, 100, 100, 4)


def test_fox_loads_intrinsics_distortion_and_skips_missing_frames(shared_data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_scene(shared_data / "fox", "train", downscale=4)
    messages = [str(w.message) for w in caught]
    assert any("skipped 22 of 67 frames" in m for m in messages), messages
    val = load_scene(shared_data / "fox", "val", downscale=4)
    assert len(train) + len(val) == 45
    assert train.images.shape[1:] == (480, 270, 3)
    assert abs(train.cameras.fx[0].item() - 1375.52 / 4) < 1e-3
    assert abs(train.cameras.cy[0].item() - 965.268 / 4) < 1e-3
    assert torch.allclose(train.cameras.distortion[0], torch.tensor([0.0578421, -0.0805099, -0.000980296, 0.00015575]))
    assert train.aabb_scale == 4
    assert torch.allclose(train.aabb[1], torch.full((3,), 0.5 * 4 / 0.33), atol=1e-4)
    # Camera centres lie around the object, within the enlarged box.
    centres = train.cameras.c2w[:, :, 3]
    assert (centres.abs() < train.aabb[1]).all(dim=1).float().mean() > 0.5


def write_blender(root: Path, frames: list[dict], size=(8, 8)) -> None:
    (root / "train").mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        if "file_path" in f:
            Image.new("RGBA", size, (255, 0, 0, 255)).save(root / f"{f['file_path']}.png")
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))


def good_frame(i: int) -> dict:
    return {"file_path": f"train/r_{i}", "transform_matrix": np.eye(4).tolist()}


def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path):
    assert_one_line_error(lambda: load_scene(tmp_path / "nope"), "nope", "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(lambda: load_scene(empty), "no known dataset layout")

    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    assert_one_line_error(lambda: load_scene(bad_json), "transforms_train.json", "malformed JSON")

    no_pose = tmp_path / "no_pose"
    write_blender(no_pose, [good_frame(0), {"file_path": "train/r_1"}])
    assert_one_line_error(lambda: load_scene(no_pose), "transforms_train.json", "frame 1", "transform_matrix")

    wrong_size = tmp_path / "wrong_size"
    write_blender(wrong_size, [good_frame(0), good_frame(1)])
    Image.new("RGBA", (9, 8)).save(wrong_size / "train" / "r_1.png")
    assert_one_line_error(lambda: load_scene(wrong_size), "r_1.png", "9x8")

    broken = tmp_path / "broken"
    write_blender(broken, [good_frame(0), good_frame(1)])
    (broken / "train" / "r_1.png").write_bytes(b"not a png at all")
    assert_one_line_error(lambda: load_scene(broken), "r_1.png", "cannot read image")


def test_ngp_intrinsics_must_match_the_image_size(tmp_path):
    root = tmp_path / "ngp"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (16, 12)).save(root / "images" / "a.png")
    meta = {"fl_x": 10, "fl_y": 10, "cx": 8, "cy": 6, "w": 20, "h": 12, "aabb_scale": 2,
            "frames": [{"file_path": "images/a.png", "transform_matrix": np.eye(4).tolist()}]}
    (root / "transforms.json").write_text(json.dumps(meta))
    assert_one_line_error(lambda: load_scene(root, "all"), "a.png", "16x12", "20x12")
    meta["w"] = 16
    (root / "transforms.json").write_text(json.dumps(meta))
    scene = load_scene(root, "all")
    assert scene.images.shape == (1, 12, 16, 3) and scene.aabb_scale == 2


def test_blender_folder_with_only_a_train_split_names_the_missing_split(tmp_path):
    write_blender(tmp_path, [good_frame(0), good_frame(1)])
    assert len(load_scene(tmp_path, "train")) == 2
    # No silent fallback from test to val (or to anything else): a dedicated error the CLI can catch.
    for split in ("val", "test"):
        with pytest.raises(SplitNotFound) as info:
            load_scene(tmp_path, split)
        text = str(info.value)
        assert "\n" not in text and f"transforms_{split}.json" in text and f"no '{split}' split" in text, text
        assert "splits found: train" in text, text
    assert issubclass(SplitNotFound, NeuralFieldsError)
