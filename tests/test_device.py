"""``--device``: checked, announced, and a device that is not there is a one-line error."""

from __future__ import annotations

import torch

from neuralfields.cli import main


def test_device_flag_is_checked_and_announced(tiny_run, tmp_path, capsys):
    assert main(["eval", str(tiny_run), "--device", "cpu", "--max-images", "1", "--no-progress"]) == 0
    assert "device: cpu" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["eval", str(tiny_run), "--device", "cuda", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert "no CUDA device" in err and "\n" not in err
    assert main(["eval", str(tiny_run), "--device", "tpu9", "--no-progress"]) == 2
    assert "unknown device" in capsys.readouterr().err
