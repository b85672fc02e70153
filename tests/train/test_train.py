import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_args
from neuralfields.cli import main
from neuralfields.scene_model import load_model
from neuralfields.run.checkpoints import list_checkpoints, load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_short_training_on_the_demo_scene_beats_a_psnr_bar(tiny_run, demo_dir):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["steps"] == 300
    assert summary["val_psnr"] > 21.0, summary  # an untrained field scores about 10 dB here
    model, _ = load_model(tiny_run)
    # The grid learned where the matter is: most of the box is culled.
    assert model.grid.occupancy_fraction() < 0.4


def test_tiny_run_folder_has_config_metrics_and_reloads(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["field"]["name"] == "ngp" and cfg["field"]["options"]["n_levels"] == 8
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_psnr" in r for r in rows) and any("loss" in r for r in rows)
    model, state = load_model(tiny_run)
    assert state["step"] == 300
    img = model.render_camera(model.info.cameras, 0)
    assert img["rgb"].shape == (48, 48, 3) and img["rgb"].std() > 0.05


def test_cli_eval_writes_per_image_metrics_and_renders(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--split", "test", "--no-progress"]) == 0
    result = json.loads((tiny_run / "eval" / "test" / "metrics.json").read_text())
    assert len(result["images"]) == 4 and result["split"] == "test"
    assert result["psnr"] > 20 and 0 < result["ssim"] <= 1
    assert all("psnr" in r and "ssim" in r for r in result["images"])
    assert (tiny_run / "eval" / "test" / "0000_rgb.png").exists()
    assert "PSNR" in capsys.readouterr().out


def test_cli_train_then_resume_honours_the_total_step_budget(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(demo_dir, out, 60)) == 0
    assert load_checkpoint(list_checkpoints(out)[-1])["step"] == 60
    # Training again into the same folder without --resume would overwrite the user's run.
    assert main(cli_args(demo_dir, out, 60)) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(cli_args(demo_dir, out, 100, ["--resume"])) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "step 60" in text
    assert load_checkpoint(list_checkpoints(out)[-1])["step"] == 100
    assert json.loads((out / "summary.json").read_text())["steps"] == 100


def test_cli_bad_inputs_print_one_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err and "does not exist" in err
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["train", "--scene", "nonexistent-preset"]) == 2
    assert "unknown scene preset" in capsys.readouterr().err
    assert main(["train", "--set", "train.nosuchkey=1", "--data", str(tmp_path)]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_killing_training_never_leaves_an_unreadable_checkpoint(demo_dir, tmp_path):
    out = tmp_path / "killed"
    args = cli_args(demo_dir, out, 5000, ["--set", "train.checkpoint_every=3"])
    env = {**os.environ, "NEURALFIELDS_COMPILE": "0"}
    code = f"import sys; from neuralfields.cli import main; sys.exit(main({args!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list_checkpoints(out)) < 2:
            time.sleep(0.2)
        time.sleep(0.37)  # land somewhere inside a later step or write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    paths = list_checkpoints(out)
    assert paths, "no checkpoint was written before the kill"
    for path in paths:
        assert load_checkpoint(path)["step"] > 0
    # Leftover temporary files are never mistaken for checkpoints, and resume picks up the newest.
    last = load_checkpoint(paths[-1])["step"]
    assert main(cli_args(demo_dir, out, last + 5, ["--resume"])) == 0
    assert load_checkpoint(list_checkpoints(out)[-1])["step"] == last + 5


def test_lr_schedule_paces_by_time_when_a_time_budget_cuts_the_run_short():
    from neuralfields.config import TrainConfig
    from neuralfields.loop import scene_loop_config

    t = TrainConfig(steps=1000, warmup_steps=1, decay_milestones=[0.5, 0.9], decay_gamma=0.1)
    lr_factor = scene_loop_config(t, 100).schedule
    assert lr_factor(100, seconds=50.0) == 1.0  # no time budget: only steps count
    assert abs(lr_factor(500) - 0.1) < 1e-12
    t.time_budget = 100.0
    lr_factor = scene_loop_config(t, 100).schedule
    assert lr_factor(100, seconds=40.0) == 1.0
    assert abs(lr_factor(100, seconds=60.0) - 0.1) < 1e-12  # half the time gone: first decay
    assert abs(lr_factor(100, seconds=95.0) - 0.01) < 1e-12
    assert abs(lr_factor(950, seconds=10.0) - 0.01) < 1e-12  # steps still count


def test_train_without_a_val_split_and_eval_on_another_folder(demo_dir, tiny_run, tmp_path, capsys):
    """A NeRF-synthetic copy with only transforms_train.json trains (without validation); asking
    for a split it lacks is one line; eval --data scores a run on another folder of the same world."""
    import shutil

    only_train = tmp_path / "only-train"
    shutil.copytree(demo_dir, only_train)
    for split in ("val", "test"):
        (only_train / f"transforms_{split}.json").unlink()
    out = tmp_path / "run"
    assert main(["train", "--data", str(only_train), "--steps", "10", "--output", str(out), "--no-progress",
                 "--set", "field.options.n_levels=4", "--set", "field.options.log2_table=12"]) == 0
    printed = capsys.readouterr().out
    assert "training without validation" in printed and "0 val images" in printed
    assert "val_psnr" not in json.loads((out / "summary.json").read_text())
    assert main(["eval", str(out), "--split", "test", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "transforms_test.json" in err and "train" in err, err
    # The same world, another folder: the demo scene's own held-out views.
    assert main(["eval", str(tiny_run), "--data", str(demo_dir), "--split", "test", "--no-progress"]) == 0
    result = json.loads((tiny_run / "eval" / f"test-{demo_dir.name}" / "metrics.json").read_text())
    assert len(result["images"]) == 4 and result["data"] == str(demo_dir) and result["psnr"] > 18
