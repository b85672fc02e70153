"""``scripts/gpu_data.py`` copies what the GPU check trains on: every train view, 10 val views
spread over the split, each with its transforms JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_data.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_lego(root: Path, n_train: int = 5, n_val: int = 20) -> Path:
    """A NeRF-synthetic layout with tiny stand-in images (frames name them without extension)."""
    for split, n in (("train", n_train), ("val", n_val), ("test", 3)):
        (root / split).mkdir(parents=True)
        frames = []
        for i in range(n):
            (root / split / f"r_{i}.png").write_bytes(f"{split} {i}".encode())
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": [[float(i)] * 4] * 4})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
    (root / "train" / "unlisted.png").write_bytes(b"not in the JSON")
    return root


def test_copies_train_and_ten_spread_val_views(tmp_path, capsys):
    gpu_data = load_script()
    source, dest = fake_lego(tmp_path / "lego"), tmp_path / "out" / "lego"
    for _ in range(2):  # a second run finds the copies in place
        assert gpu_data.main(["--source", str(source), "--dest", str(dest)]) == 0
    train = json.loads((dest / "transforms_train.json").read_text())
    val = json.loads((dest / "transforms_val.json").read_text())
    assert train == json.loads((source / "transforms_train.json").read_text())
    assert val["camera_angle_x"] == 0.69
    kept = [int(f["file_path"].rsplit("_", 1)[1]) for f in val["frames"]]
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 19 and kept == sorted(set(kept))
    assert sorted(p.name for p in (dest / "train").iterdir()) == sorted(f"r_{i}.png" for i in range(5))
    assert sorted(p.name for p in (dest / "val").iterdir()) == sorted(f"r_{i}.png" for i in kept)
    assert (dest / "val" / "r_19.png").read_bytes() == b"val 19"
    assert not (dest / "test").exists() and not (dest / "transforms_test.json").exists()
    out = capsys.readouterr().out
    assert "5 train + 10 val views" in out and "carry: " in out


def test_default_destination_is_the_ignored_gpu_data_folder():
    gpu_data = load_script()
    root = SCRIPT.parents[1]
    assert gpu_data.DEST == root / "gpu_data" / "lego"
    assert "/gpu_data/" in (root / ".gitignore").read_text().splitlines()


def test_missing_source_is_one_line(tmp_path, capsys):
    assert load_script().main(["--source", str(tmp_path / "nothing"), "--dest", str(tmp_path / "d")]) == 1
    assert "transforms_train.json missing" in capsys.readouterr().err
