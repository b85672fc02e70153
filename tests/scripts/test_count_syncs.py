"""scripts/count_syncs.py: the host waits of a training step and of a rendered view, counted on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def count(demo_dir: Path, out: Path, rays: int) -> dict:
    """The counter's JSON for a demo-scene run with ``rays`` rays per batch (in its own process:
    compiled functions cannot run under the counting dispatch mode), marching as an accelerator does."""
    args = [sys.executable, str(ROOT / "scripts" / "count_syncs.py"), "--data", str(demo_dir), "--warmup", "3",
            "--steps", "6", "--views", "1", "--json", str(out), "--set", "train.selection=int",
            "--set", f"train.init_rays={rays}", "--set", f"train.max_rays={rays}",
            "--set", f"train.target_samples={rays * 64}", "--set", "train.steps=40"]
    env = {**os.environ, "NEURALFIELDS_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def device_waits(result: dict) -> float:
    """Syncs per call, potential ones (host copies, free on a CPU) included, except reads of the
    host-resident dataset cameras (an image's size, its distortion flag), which no device holds."""
    total = 0.0
    for site in result["sites"]:
        inner = site["site"].split(" < ")[0]
        for op, n in site["by_op"].items():
            host = "has_distortion" in inner or ("render_camera" in inner and op.startswith(".tolist()"))
            total += 0.0 if host else n
    return total


def test_a_training_step_and_a_view_wait_on_the_host_at_most_four_times(demo_dir, tmp_path):
    """Marching reads one count (how many candidates are occupied, with how many fall in the first
    pruning phase), pruning two (the second phase's size, the kept samples'); statistics stay on
    the device until shown, the error map updates in place. A view adds its one copy to the host.
    The counts do not grow with the number of rays."""
    results = {rays: count(demo_dir, tmp_path / f"{rays}.json", rays) for rays in (512, 2048)}
    for rays, result in results.items():
        step, view = result["train_step"], result["render_view"]
        assert step["aten_ops"] > 100  # the counter sees the step's ops
        assert 1 <= device_waits(step) <= 4, step["sites"][:6]
        assert 1 <= device_waits(view) <= 4, view["sites"][:8]
    assert device_waits(results[512]["train_step"]) == device_waits(results[2048]["train_step"])
