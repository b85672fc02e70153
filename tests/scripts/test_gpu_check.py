"""``scripts/gpu_check.sh`` without a CUDA device: stops within seconds, exits 1 and names every
figure it could not measure, in the summary it writes under ``$OUT``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_gpu_it_fails_fast_and_names_the_missing_figures(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    start = time.perf_counter()
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 1, result.stdout + result.stderr
    assert seconds < 60, seconds
    assert "sees no CUDA device" in result.stdout
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    expected = {"device", "driver", "gpu_tests", "lego_gpu_val_psnr_1min", "lego_gpu_val_psnr_2min",
                "lego_gpu_val_psnr_3min", "lego_gpu_samples_per_second", "lego_gpu_peak_memory_gib",
                "view_800_live_ms", "view_800_baked_ms"}
    assert set(report["missing"]) == expected
    assert report["torch"] == __import__("torch").__version__
    missing_line = next(line for line in result.stdout.splitlines() if "missing figures" in line)
    assert all(name in missing_line for name in expected)
    assert not (tmp_path / "bench_train_cuda.json").exists()
