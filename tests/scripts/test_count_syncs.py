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
    compiled functions cannot run under the counting dispatch mode)."""
    args = [sys.executable, str(ROOT / "scripts" / "count_syncs.py"), "--data", str(demo_dir), "--warmup", "3",
            "--steps", "6", "--views", "1", "--json", str(out), "--set", "train.selection=int",
            "--set", f"train.init_rays={rays}", "--set", f"train.max_rays={rays}",
            "--set", f"train.target_samples={rays * 64}", "--set", "train.steps=40"]
    env = {**os.environ, "NEURALFIELDS_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def outside_marcher(result: dict) -> float:
    """Syncs per call outside the ray marcher (render/marching.py still sizes its output by the
    data), potential ones (host copies, free on a CPU) included."""
    return sum(s["count"] for s in result["sites"] if "render/marching.py" not in s["site"])


def test_a_training_step_waits_on_the_host_only_in_the_marcher(demo_dir, tmp_path):
    """Statistics stay on the device until they are shown or logged, the error map updates every
    cell in place, pixel rays keep the image width on the device: outside the marcher a training
    step does not wait at all, at any ray count, and a rendered view waits at most 3 times (its
    size, its distortion flag, one copy of all its buffers)."""
    for rays in (512, 2048):
        result = count(demo_dir, tmp_path / f"{rays}.json", rays)
        step, view = result["train_step"], result["render_view"]
        assert step["total"] > 0 and step["aten_ops"] > 100  # the counter sees the step's ops
        assert outside_marcher(step) == 0, step["sites"][:5]
        assert outside_marcher(view) <= 3, view["sites"][:6]
