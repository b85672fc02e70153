#!/usr/bin/env bash
# The GPU check: one command on a machine with a CUDA device, from the repository root, done
# within 8 minutes. Its data travels with the checkout:
#
#   python scripts/gpu_data.py     # once, where ../shared is: lego 800x800 into gpu_data/lego (ignored by git)
#   bash scripts/gpu_check.sh      # on the GPU machine, with gpu_data carried along
#
# Steps, each under a timeout that keeps the whole inside the 8 minutes:
#   1. torch must see a CUDA device; if not, it says so and exits 1 within seconds;
#   2. pip install --no-deps -e . (torch, numpy, pillow, ... are expected installed);
#   3. the GPU-marked tests (pytest -m gpu, the files that carry the marker);
#   4. lego-gpu trained by scripts/bench_train.py with marks at 1, 2 and 3 minutes of training:
#      val PSNR (10 val views), samples/s and peak GPU memory;
#   5. an 800x800 val view of that run rendered live and baked (median of 3, after a warm-up).
# Writes to $OUT when set, else docs/: gpu_check.json (every figure, and the names of those
# missing), bench_train_cuda.json, view_800_cuda.json and the logs of each step. Exits 1 when
# any figure is missing: a skipped benchmark, a failed or skipped test run, a step cut short.
#
# Environment: GPU_DATA (default gpu_data/lego), MARKS (default "1 2 3", minutes of training),
# CHECK_SECONDS (default 450: the whole check's deadline).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works even where the install step cannot
out=${OUT:-docs}
data=${GPU_DATA:-gpu_data/lego}
marks=${MARKS:-"1 2 3"}
start=$(date +%s)
deadline=$(( start + ${CHECK_SECONDS:-450} ))
mkdir -p "$out"
rm -f "$out/gpu_check.json" "$out/bench_train_cuda.json" "$out/view_800_cuda.json"
tests_rc=-1 tests_summary="not run" device_json="{}"

# limit CAP RESERVE: seconds a step may take: CAP, or less when the deadline must leave RESERVE
# seconds for the steps after it.
limit() {
  local left=$(( deadline - $(date +%s) - $2 ))
  if (( left < $1 )); then echo $(( left > 5 ? left : 5 )); else echo "$1"; fi
}

# summarize: gather every figure into gpu_check.json, name the missing ones, exit 1 if any.
summarize() {
  python3 - "$out" "$tests_rc" "$tests_summary" "$(( $(date +%s) - start ))" "$marks" "$device_json" <<'PY'
import json, sys
from pathlib import Path

out, tests_rc, tests_summary, seconds, marks, device = sys.argv[1:7]
out, tests_rc, marks, device = Path(out), int(tests_rc), [float(m) for m in marks.split()], json.loads(device or "{}")

def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else {}

train, view = load("bench_train_cuda.json"), load("view_800_cuda.json")
rows = {float(r["minutes"]): r for r in train.get("marks", [])}
figures = {k: device.get(k) for k in ("device", "torch", "driver")}
figures["gpu_tests"] = tests_summary if tests_rc == 0 else None
for m in marks:
    figures[f"lego_gpu_val_psnr_{m:g}min"] = rows.get(m, {}).get("val_psnr")
figures["lego_gpu_samples_per_second"] = rows.get(max(marks), {}).get("samples_per_second")
figures["lego_gpu_peak_memory_gib"] = train.get("peak_memory_gib")
sized = view.get("view") == [800, 800]
figures["view_800_live_ms"] = view.get("live_ms") if sized else None
figures["view_800_baked_ms"] = view.get("baked_ms") if sized else None
missing = [k for k, v in figures.items() if v is None]
report = {**figures, "gpu_tests_exit_code": tests_rc, "gpu_tests_summary": tests_summary,
          "bench_train": "bench_train_cuda.json" if train else None, "view": "view_800_cuda.json" if view else None,
          "seconds": int(seconds), "missing": missing}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
for k, v in figures.items():
    print(f"  {k:32s} {'MISSING' if v is None else v}")
print(f"written {out / 'gpu_check.json'}")
if missing:
    print(f"gpu_check: FAILED, missing figures: {', '.join(missing)}")
    sys.exit(1)
print("gpu_check: all figures measured")
PY
  exit $?
}

# 1. The device (and the driver), or an early exit.
device_json=$(python3 - <<'PY'
import json, re, subprocess, sys
import torch
info = {"torch": torch.__version__}
if not torch.cuda.is_available():
    print(json.dumps(info))
    sys.exit(1)
info["device"] = torch.cuda.get_device_name(0)
info["cuda"] = torch.version.cuda
try:
    info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=20).stdout.split()[0]
except (OSError, IndexError, subprocess.SubprocessError):
    try:
        info["driver"] = re.search(r"Kernel Module\s+(\S+)", open("/proc/driver/nvidia/version").read()).group(1)
    except (OSError, AttributeError):
        pass
print(json.dumps(info))
PY
)
if [ $? -ne 0 ]; then
  echo "gpu_check: torch sees no CUDA device ($device_json): nothing can be measured here; run it on the GPU machine"
  tests_summary="not run: no CUDA device"
  summarize
fi
echo "gpu_check: $device_json; writing to $out"

# 2. Install (no network there: no build isolation, no index; PYTHONPATH covers a failure).
timeout -k 5 "$(limit 60 400)" python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . \
  || timeout -k 5 "$(limit 60 400)" python3 -m pip install -q --no-deps -e . \
  || echo "gpu_check: pip install failed; running from the checkout (PYTHONPATH)"

# 3. The GPU-marked tests.
test_files=$(grep -rlE "mark\.gpu\b" tests --include='*.py' | sort | tr '\n' ' ')
if [ -z "$test_files" ]; then
  tests_summary="no GPU-marked tests found"
else
  echo "gpu_check: pytest -m gpu $test_files"
  timeout -k 10 "$(limit 100 330)" python3 -m pytest -q -m gpu -p no:cacheprovider $test_files \
    > "$out/gpu_tests.log" 2>&1
  tests_rc=$?
  tests_summary=$(tail -n 1 "$out/gpu_tests.log")
  (( tests_rc == 124 || tests_rc == 137 )) && tests_summary="cut short by the time limit ($tests_summary)"
  # Tests that all skipped did not check anything on the GPU.
  if (( tests_rc == 0 )) && ! grep -q " passed" <<< "$tests_summary"; then tests_rc=5; fi
  echo "gpu_check: tests exit $tests_rc: $tests_summary"
fi

# 4. lego-gpu for 3 minutes of training.
run_dir=$(mktemp -d)/lego-gpu
if [ ! -f "$data/transforms_train.json" ]; then
  echo "gpu_check: no lego at $data (run 'python scripts/gpu_data.py' where ../shared is, and carry gpu_data)"
else
  timeout -k 10 "$(limit 240 90)" python3 scripts/bench_train.py --scene lego-gpu --data "$data" --downscale 1 \
    --marks $marks --eval-images 10 --device cuda --run-dir "$run_dir" --out "$out/bench_train_cuda.json" \
    2>&1 | tee "$out/bench_train_cuda.log"
  echo "gpu_check: bench_train exit ${PIPESTATUS[0]}"
fi

# 5. An 800x800 view of that run, live and baked.
if [ -f "$run_dir/config.json" ]; then
  timeout -k 10 "$(limit 120 0)" python3 - "$run_dir" "$out/view_800_cuda.json" <<'PY' 2>&1 | tee "$out/view_800_cuda.log"
import json, statistics, sys, time
from pathlib import Path

import torch

from neuralfields.bake import BakeConfig, bake_run, baked_model
from neuralfields.data import load_data
from neuralfields.scene_model import load_model

run, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_grad_enabled(False)
model, state = load_model(run, device="cuda")
val = load_data(model.cfg.data, "val")


def median_ms(m) -> float:
    m.render_camera(val.cameras, 0)  # warm-up: compiles
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        m.render_camera(val.cameras, 0)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


report = {"run": str(run), "view": [val.width, val.height], "live_ms": median_ms(model)}
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"live {report['view']}: {report['live_ms']} ms", flush=True)
cfg = BakeConfig()
bake, _, seconds = bake_run(model, state, run, cfg, progress=False)
report["bake_seconds"] = round(seconds, 1)
report["baked_ms"] = median_ms(baked_model(model, bake, cfg))
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"baked (bake {report['bake_seconds']} s): {report['baked_ms']} ms", flush=True)
PY
else
  echo "gpu_check: no trained lego-gpu run: no view to render"
fi

summarize
